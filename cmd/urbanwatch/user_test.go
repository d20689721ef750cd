package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urbanwatch/urbanwatch/config"
)

// TestUserCommand adds, lists, re-passwords and removes console users in a
// users file, as an administrator would, and refuses bad input.
func TestUserCommand(t *testing.T) {
	dir := t.TempDir()
	demo, _ := filepath.Abs("../../deploy/demo")
	cfg := filepath.Join(dir, "urbanwatch.yaml")
	os.WriteFile(cfg, []byte("registry: "+filepath.Join(demo, "registry.yaml")+"\ncity: "+filepath.Join(demo, "city.yaml")+
		"\nconsole: {users: users.yaml}\n"), 0o600)
	run := func(stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := user(append(args[:1:1], append([]string{"-config", cfg}, args[1:]...)...), strings.NewReader(stdin), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if _, err := run("first-password\n", "add", "-name", "zhang.wei", "-role", "company", "-company", "C01", "-display", "张伟"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("second-password\n", "add", "-name", "liu", "-role", "inspection"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"x-password-1\n", []string{"add", "-name", "zhang.wei", "-role", "admin"}, "exists"},
		{"x-password-1\n", []string{"add", "-name", "wang", "-role", "company", "-company", "C99"}, "not in the city"},
		{"x-password-1\n", []string{"add", "-name", "wang", "-role", "chief"}, "role"},
		{"short\n", []string{"add", "-name", "wang", "-role", "duty"}, "at least 8"},
		{"", []string{"add", "-name", "wang", "-role", "duty"}, "standard input"},
		{"x-password-1\n", []string{"passwd", "-name", "nobody"}, "no user"},
	} {
		if _, err := run(bad.stdin, bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v, want an error saying %q", bad.args, err, bad.want)
		}
	}
	if _, err := run("new-password-2\n", "passwd", "-name", "ZHANG.WEI"); err != nil {
		t.Fatal(err)
	}
	out, err := run("", "list")
	if err != nil || !strings.Contains(out, "zhang.wei") || !strings.Contains(out, "C01") || !strings.Contains(out, "liu") {
		t.Fatalf("list: %q %v", out, err)
	}
	users, err := config.LoadUsers(filepath.Join(dir, "users.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := users.Find("zhang.wei"); u == nil || !u.CheckPassword("new-password-2") || u.CheckPassword("first-password") || u.Display() != "张伟" {
		t.Fatalf("zhang.wei after passwd: %+v", u)
	}
	if st, _ := os.Stat(filepath.Join(dir, "users.yaml")); st.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v: it holds password hashes", st.Mode())
	}
	if _, err := run("", "remove", "-name", "liu"); err != nil {
		t.Fatal(err)
	}
	if out, _ := run("", "list"); strings.Contains(out, "liu") {
		t.Fatalf("removed user still listed: %q", out)
	}
}
