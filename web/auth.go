package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urbanwatch/urbanwatch/config"
)

// Sign-in limits: after maxFailures wrong passwords for one user name, or
// maxAddrFailures from one client address (an office behind one NAT must
// not be locked out by one person's typos; a guesser trying many names is),
// within failWindow, further attempts are refused for lockout.
const (
	maxFailures     = 5
	maxAddrFailures = 20
	failWindow      = 15 * time.Minute
	lockout         = 15 * time.Minute

	sessionCookie = "uw_session"
	csrfHeader    = "X-CSRF-Token"
)

// dummyHash is compared against when the user name is unknown, so a wrong
// name takes as long as a wrong password.
var dummyHash = func() string {
	u := config.User{}
	if err := u.SetPassword("not-a-password-of-anyone", config.BcryptCost); err != nil { // as slow as a real one
		panic(err)
	}
	return u.PasswordHash
}()

// session is one signed-in browser.
type session struct {
	id      string
	user    string // login name
	csrf    string
	expires time.Time
}

// identity is who makes a request, as the server enforces it.
type identity struct {
	Name    string // login name
	Display string // recorded as who acted
	Role    config.Role
	Company string
	Lang    string
	csrf    string
	session string
}

// actor is who acted, as the alert history records it: the display name
// with the login name, so an audit can tell two people of one name apart.
func (id *identity) actor() string {
	if id.Display == "" || strings.EqualFold(id.Display, id.Name) {
		return id.Name
	}
	return id.Display + " (" + id.Name + ")"
}

type ctxKey struct{}

func identityOf(r *http.Request) *identity {
	id, _ := r.Context().Value(ctxKey{}).(*identity)
	return id
}

// sessions holds the signed-in browsers and the sign-in failure counts.
type sessions struct {
	now func() time.Time
	ttl time.Duration

	mu       sync.Mutex
	byID     map[string]*session
	failures map[string][]time.Time // "user:NAME" or "addr:IP" → recent failures
	// lockedUntil: keys refused until then.
	lockedUntil map[string]time.Time
}

func newSessions(now func() time.Time, ttl time.Duration) *sessions {
	return &sessions{now: now, ttl: ttl, byID: map[string]*session{}, failures: map[string][]time.Time{},
		lockedUntil: map[string]time.Time{}}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the kernel's randomness failed; nothing is safe
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for user.
func (s *sessions) create(user string) *session {
	ss := &session{id: randomToken(), user: user, csrf: randomToken(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, o := range s.byID { // sweep expired ones now and then
		if now.After(o.expires) {
			delete(s.byID, id)
		}
	}
	s.byID[ss.id] = ss
	return ss
}

func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[id]
	if ss == nil {
		return nil
	}
	if s.now().After(ss.expires) {
		delete(s.byID, id)
		return nil
	}
	return ss
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// dropUser ends every session of user (a removed account, a new password).
func (s *sessions) dropUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.byID {
		if strings.EqualFold(ss.user, user) {
			delete(s.byID, id)
		}
	}
}

// locked returns how long sign-in stays refused for any of keys; 0 when
// it is allowed.
func (s *sessions) locked(keys ...string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var wait time.Duration
	for _, k := range keys {
		if until, ok := s.lockedUntil[k]; ok {
			if now.Before(until) {
				wait = max(wait, until.Sub(now))
			} else {
				delete(s.lockedUntil, k)
			}
		}
	}
	return wait
}

// fail counts a failed sign-in against keys; the maxFailures-th within
// failWindow locks the key for lockout.
func (s *sessions) fail(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, k := range keys {
		fs := s.failures[k]
		for len(fs) > 0 && now.Sub(fs[0]) > failWindow {
			fs = fs[1:]
		}
		fs = append(fs, now)
		limit := maxFailures
		if strings.HasPrefix(k, "addr:") {
			limit = maxAddrFailures
		}
		if len(fs) >= limit {
			s.lockedUntil[k] = now.Add(lockout)
			fs = nil
		}
		if len(fs) == 0 {
			delete(s.failures, k)
		} else {
			s.failures[k] = fs
		}
	}
}

func (s *sessions) succeed(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.failures, k)
	}
}

// clientAddr is the address sign-in failures are counted against.
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trusted(host) {
		return host
	}
	// From a trusted proxy: the nearest address in X-Forwarded-For that is
	// not itself a trusted proxy is the client (what is left of it may be
	// forged by the client).
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for _, a := range strings.Split(h, ",") {
			hops = append(hops, strings.TrimSpace(a))
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		if _, err := netip.ParseAddr(hops[i]); err != nil {
			break
		}
		if !s.trusted(hops[i]) {
			return hops[i]
		}
	}
	return host
}

// trusted reports whether addr is one of console.trusted_proxies.
func (s *Server) trusted(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	for _, p := range s.o.TrustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// handleLogin signs a user in: form fields username, password, next. With
// Accept: application/json it answers JSON; otherwise it redirects.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	wantJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	fail := func(code int, msg string, retry time.Duration) {
		s.m.logins.WithLabelValues(map[int]string{http.StatusTooManyRequests: "limited", http.StatusUnauthorized: "refused",
			http.StatusForbidden: "forbidden", http.StatusBadRequest: "bad_request"}[code]).Inc()
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds()+0.999)))
		}
		if wantJSON {
			body := map[string]any{"error": msg}
			if retry > 0 {
				body["retry_after_s"] = int(retry.Seconds() + 0.999)
			}
			writeJSON(w, code, body)
			return
		}
		http.Redirect(w, r, "/login?error="+url.QueryEscape(msg), http.StatusSeeOther)
	}
	if !sameOrigin(r) {
		fail(http.StatusForbidden, "cross-site sign-in refused", 0)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "bad form", 0)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	// Failures count against the name as users.Find matches it (ASCII
	// letters folded): any other spelling of a name, say with U+017F "ſ"
	// for "s", would open a fresh set of attempts, so such names are no
	// user's and count against the address alone.
	userKey := "user:" + strings.ToLower(name)
	if !config.ValidUserName(name) {
		userKey = "user:\x00invalid"
	}
	keys := []string{userKey, "addr:" + s.clientAddr(r)}
	if wait := s.sessions.locked(keys...); wait > 0 {
		mins := int(wait.Minutes() + 0.999)
		fail(http.StatusTooManyRequests, fmt.Sprintf("too many failed sign-ins: try again in %d min / 登录失败次数过多，请 %d 分钟后再试", mins, mins), wait)
		return
	}
	users := s.users.Load()
	var u *config.User
	if users != nil {
		u = users.Find(name)
	}
	hash := dummyHash
	if u != nil {
		hash = u.PasswordHash
	}
	ok := (&config.User{PasswordHash: hash}).CheckPassword(password) && u != nil
	if !ok {
		s.sessions.fail(keys...)
		s.log.Warn().Str("user", name).Str("addr", s.clientAddr(r)).Msg("console sign-in refused")
		fail(http.StatusUnauthorized, "wrong user name or password / 用户名或密码错误", 0)
		return
	}
	s.sessions.succeed(keys[0]) // the address's count stays: one account must not clear another's guesses
	ss := s.sessions.create(u.Name)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: ss.id, Path: "/", HttpOnly: true,
		Secure: s.o.SecureCookies || r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(s.o.SessionTTL.Seconds())})
	s.m.logins.WithLabelValues("ok").Inc()
	s.log.Info().Str("user", u.Name).Str("role", string(u.Role)).Str("addr", s.clientAddr(r)).Msg("console sign-in")
	home := homeOf(u.Role)
	if next := r.PostFormValue("next"); safeNext(next) {
		home = next
	}
	if wantJSON {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "home": home})
		return
	}
	http.Redirect(w, r, home, http.StatusSeeOther)
}

// safeNext accepts only a local path of the console as a redirect target.
func safeNext(next string) bool {
	return strings.HasPrefix(next, "/console/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\")
}

// sameOrigin refuses a request whose Origin (or, without one, Referer)
// names another host: the defence against cross-site sign-in and, with the
// CSRF token, against cross-site actions.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" && r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true
	}
	u, err := url.Parse(src)
	return err == nil && u.Host == r.Host
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r)
	s.sessions.drop(id.session)
	s.hub.dropWhere(func(c *identity) bool { return c.session == id.session })
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// authenticate returns the signed-in identity of r, or nil.
func (s *Server) authenticate(r *http.Request) *identity {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	ss := s.sessions.get(c.Value)
	if ss == nil {
		return nil
	}
	users := s.users.Load()
	if users == nil {
		return nil
	}
	u := users.Find(ss.user)
	if u == nil { // removed since
		s.sessions.drop(ss.id)
		return nil
	}
	return &identity{Name: u.Name, Display: u.Display(), Role: u.Role, Company: u.Company, Lang: u.Lang,
		csrf: ss.csrf, session: ss.id}
}

// guard wraps h: the request must be signed in with one of roles (none:
// any), and a state change must carry the session's CSRF token and come
// from this site. Pages redirect to /login; API calls answer 401/403 JSON.
func (s *Server) guard(api bool, h http.HandlerFunc, roles ...config.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := s.authenticate(r)
		if id == nil {
			if api {
				writeError(w, http.StatusUnauthorized, "sign in first")
			} else {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			}
			return
		}
		if len(roles) > 0 && !hasRole(id.Role, roles) {
			s.m.denied.WithLabelValues("role").Inc()
			if api {
				writeError(w, http.StatusForbidden, "your role ("+string(id.Role)+") may not use this")
			} else {
				http.Redirect(w, r, homeOf(id.Role), http.StatusSeeOther)
			}
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			token := r.Header.Get(csrfHeader)
			if token == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
				r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
				token = r.PostFormValue("csrf") // never from the URL: it would leak into logs
			}
			if subtle.ConstantTimeCompare([]byte(token), []byte(id.csrf)) != 1 || !sameOrigin(r) {
				s.m.denied.WithLabelValues("csrf").Inc()
				writeError(w, http.StatusForbidden, "missing or wrong CSRF token")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	}
}

func hasRole(r config.Role, roles []config.Role) bool {
	for _, x := range roles {
		if r == x {
			return true
		}
	}
	return false
}

// homeOf is the page a role lands on.
func homeOf(r config.Role) string {
	switch r {
	case config.RoleDuty:
		return "/console/flood"
	case config.RoleCompany:
		return "/console/inspect"
	}
	return "/console/inspect"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
