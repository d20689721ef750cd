package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urbanwatch/urbanwatch/config"
)

const userUsage = `Usage:
  urbanwatch user add    -config FILE -name NAME -role admin|inspection|duty|company [-company ID] [-display NAME] [-lang zh-CN|en]
  urbanwatch user passwd -config FILE -name NAME
  urbanwatch user remove -config FILE -name NAME
  urbanwatch user list   -config FILE

add and passwd read the password from the first line of standard input:
  echo "$PASSWORD" | urbanwatch user add -config urbanwatch.yaml -name zhang.wei -role company -company C01
The users file is console.users in the configuration; add creates it. A running
service reads it again on SIGHUP; a changed password ends that user's sessions then.
`

// user manages the console's users file.
func user(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(stderr, userUsage)
		return errors.New("user: a subcommand is required")
	}
	sub := args[0]
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "urbanwatch.yaml", "configuration file")
	name := fs.String("name", "", "login name")
	role := fs.String("role", "", "admin, inspection, duty or company")
	company := fs.String("company", "", "company id of the city file (role company)")
	display := fs.String("display", "", "name shown and recorded as who acted")
	lang := fs.String("lang", "", "zh-CN or en")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, reg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	path := cfg.Console.Users
	if path == "" {
		return fmt.Errorf("user: %s sets no console.users file", *cfgPath)
	}
	var city *config.City
	if cfg.City != "" {
		if city, err = config.LoadCity(cfg.City, reg); err != nil {
			return fmt.Errorf("user: city: %w", err)
		}
	}
	users, err := config.LoadUsers(path, city)
	if errors.Is(err, os.ErrNotExist) && sub == "add" {
		users, err = &config.Users{}, nil
	}
	if err != nil {
		return err
	}
	readPassword := func() (string, error) {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("user: read password: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("user: give the password on standard input")
		}
		return pw, nil
	}
	switch sub {
	case "list":
		for _, u := range users.Users {
			fmt.Fprintf(stdout, "%-20s %-10s %-8s %s\n", u.Name, u.Role, u.Company, u.Display())
		}
		return nil
	case "add":
		if users.Find(*name) != nil {
			return fmt.Errorf("user: %q exists (use passwd to change the password)", *name)
		}
		u := config.User{Name: *name, Role: config.Role(*role), Company: *company, DisplayName: *display, Lang: *lang}
		pw, err := readPassword()
		if err != nil {
			return err
		}
		if err := u.SetPassword(pw, 0); err != nil {
			return fmt.Errorf("user: %w", err)
		}
		users.Users = append(users.Users, u)
	case "passwd":
		u := users.Find(*name)
		if u == nil {
			return fmt.Errorf("user: no user %q", *name)
		}
		pw, err := readPassword()
		if err != nil {
			return err
		}
		if err := u.SetPassword(pw, 0); err != nil {
			return fmt.Errorf("user: %w", err)
		}
	case "remove":
		n := len(users.Users)
		users.Users = deleteUser(users.Users, *name)
		if len(users.Users) == n {
			return fmt.Errorf("user: no user %q", *name)
		}
	default:
		fmt.Fprint(stderr, userUsage)
		return fmt.Errorf("user: unknown subcommand %q", sub)
	}
	if err := users.Validate(city); err != nil {
		return fmt.Errorf("user: %w", err)
	}
	if err := users.Save(path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d users\n", path, len(users.Users))
	return nil
}

func deleteUser(us []config.User, name string) []config.User {
	out := us[:0]
	for _, u := range us {
		if !strings.EqualFold(u.Name, name) {
			out = append(out, u)
		}
	}
	return out
}
