package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/urbanwatch/urbanwatch/internal/atomicfile"
)

// Role is what a console user may see and do (docs/console.md).
type Role string

// The console roles.
const (
	RoleAdmin      Role = "admin"      // everything
	RoleInspection Role = "inspection" // every truck, truck alerts, evidence, reports
	RoleDuty       Role = "duty"       // gauges, depth points, gauge alerts, CAP warnings
	RoleCompany    Role = "company"    // its own company's trucks, alerts, evidence and report
)

// Roles lists every valid Role.
var Roles = []Role{RoleAdmin, RoleInspection, RoleDuty, RoleCompany}

// BcryptCost is the cost new password hashes are made with.
const BcryptCost = 12

// User is one console account.
type User struct {
	// Name is the login name: letters, digits, '.', '_' and '-'.
	Name string `yaml:"name"`
	// DisplayName is shown in the header and recorded as who acted;
	// default Name.
	DisplayName string `yaml:"display_name,omitempty"`
	Role        Role   `yaml:"role"`
	// Company is the company id (city.yaml) a company user belongs to;
	// required for role company, refused for the others.
	Company string `yaml:"company,omitempty"`
	// PasswordHash is a bcrypt hash (SetPassword makes one).
	PasswordHash string `yaml:"password_hash"`
	// Lang is the user's preferred language, zh-CN (default) or en.
	Lang string `yaml:"lang,omitempty"`
}

// Users is the console's users file.
type Users struct {
	Users []User `yaml:"users"`
	path  string
}

var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidUserName reports whether name has the form of a console login name:
// 1 to 64 ASCII letters, digits, '.', '_' or '-'.
func ValidUserName(name string) bool { return userName.MatchString(name) }

// LoadUsers reads a users file strictly and validates it against city (nil
// skips the company check).
func LoadUsers(path string, city *City) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	u := &Users{}
	if err := decodeStrict(path, data, u); err != nil {
		return nil, err
	}
	u.path = path
	if err := u.Validate(city); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// Validate checks every user, reporting all problems at once. Companies are
// checked against city when it is not nil.
func (u *Users) Validate(city *City) error {
	var errs []error
	seen := map[string]bool{}
	for i := range u.Users {
		us := &u.Users[i]
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("users[%d] %s: %s", i, us.Name, fmt.Sprintf(format, args...)))
		}
		if !userName.MatchString(us.Name) {
			bad("name: want 1 to 64 letters, digits, '.', '_' or '-'")
		}
		if seen[strings.ToLower(us.Name)] {
			bad("name is used twice")
		}
		seen[strings.ToLower(us.Name)] = true
		switch us.Role {
		case RoleAdmin, RoleInspection, RoleDuty:
			if us.Company != "" {
				bad("company is only for role company")
			}
		case RoleCompany:
			if us.Company == "" {
				bad("role company needs company (a company id of the city file)")
			} else if city != nil && city.Company(us.Company) == nil {
				bad("company %q is not in the city file", us.Company)
			}
		default:
			bad("role %q: want admin, inspection, duty or company", us.Role)
		}
		if _, err := bcrypt.Cost([]byte(us.PasswordHash)); err != nil {
			bad("password_hash is not a bcrypt hash (set it with urbanwatch user passwd)")
		}
		switch us.Lang {
		case "", "zh-CN", "en":
		default:
			bad("lang %q: want zh-CN or en", us.Lang)
		}
	}
	return errors.Join(errs...)
}

// Find returns the user called name (case-insensitive, ASCII only), or nil.
func (u *Users) Find(name string) *User {
	if !ValidUserName(name) {
		return nil // no user has such a name; EqualFold would fold "ſ" to "s"
	}
	for i := range u.Users {
		if strings.EqualFold(u.Users[i].Name, name) {
			return &u.Users[i]
		}
	}
	return nil
}

// Display returns the name to show and record for the user.
func (us *User) Display() string {
	if us.DisplayName != "" {
		return us.DisplayName
	}
	return us.Name
}

// SetPassword replaces the user's hash with a bcrypt hash of password at
// cost (BcryptCost when 0). Passwords shorter than 8 characters are refused.
func (us *User) SetPassword(password string, cost int) error {
	if len([]rune(password)) < 8 {
		return errors.New("password: at least 8 characters")
	}
	if len(password) > 72 {
		return errors.New("password: at most 72 bytes (bcrypt's limit)")
	}
	if cost == 0 {
		cost = BcryptCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	us.PasswordHash = string(h)
	return nil
}

// CheckPassword reports whether password is the user's.
func (us *User) CheckPassword(password string) bool {
	return bcrypt.CompareHashAndPassword([]byte(us.PasswordHash), []byte(password)) == nil
}

// Save writes the users file atomically (temp file, fsync, rename), mode
// 0600 since it holds password hashes.
func (u *Users) Save(path string) error {
	data, err := yaml.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode users: %w", err)
	}
	data = append([]byte("# urbanwatch console users; edit with `urbanwatch user`.\n"), data...)
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("save users: %w", err)
	}
	return nil
}
