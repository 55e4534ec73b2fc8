package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// MinKeyLen is the shortest API key accepted (the W&B clients check for at least 40 characters).
const MinKeyLen = 40

const sessionCookie = "mami_session"

// CheckKey reports whether k is an acceptable API key: at least MinKeyLen characters of [A-Za-z0-9_-].
func CheckKey(k string) error {
	if len(k) < MinKeyLen {
		return fmt.Errorf("api key: %d characters, need at least %d", len(k), MinKeyLen)
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("api key: character %q not allowed (use A-Z a-z 0-9 _ -)", r)
		}
	}
	return nil
}

// HashKey returns the stored form of a key: hex sha256.
func HashKey(k string) string {
	h := sha256.Sum256([]byte(k))
	return hex.EncodeToString(h[:])
}

// NewKey returns a fresh random key ("mami_" and 48 hex digits).
func NewKey() string { return "mami_" + randomHex(24) }

// AddKey adds an API key at run time.
func (s *Server) AddKey(r *http.Request, k string) error {
	if err := CheckKey(k); err != nil {
		return err
	}
	h := HashKey(k)
	if err := s.store.AddKey(r.Context(), h, "added"); err != nil {
		return err
	}
	s.mu.Lock()
	s.keys[h] = true
	s.mu.Unlock()
	return nil
}

// requestKey extracts the API key of a request: HTTP Basic (any user, key as password; or the key as user
// with an empty password) or a Bearer token.
func requestKey(r *http.Request) string {
	h := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(h, "Basic "):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len("Basic "):]))
		if err != nil {
			return ""
		}
		user, pass, _ := strings.Cut(string(raw), ":")
		if pass == "" {
			return user
		}
		return pass
	case strings.HasPrefix(h, "Bearer "):
		return strings.TrimSpace(h[len("Bearer "):])
	}
	return ""
}

func (s *Server) validKey(k string) bool {
	if k == "" {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[HashKey(k)]
}

// requireKey guards the W&B protocol endpoints: a valid API key or 401.
func (s *Server) requireKey(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.validKey(requestKey(r)) {
			w.Header().Set("WWW-Authenticate", `Basic realm="mami"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid API key")
			return
		}
		next(w, r)
	}
}

// dashboardAccess guards the dashboard and the JSON API. On loopback the dashboard is open (but only to
// requests naming a loopback host, against DNS rebinding); otherwise an API key or a session is required.
// html selects the failure answer: a redirect to the login page, or a 401 JSON error.
func (s *Server) dashboardAccess(next http.HandlerFunc, html bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.allowed(r) {
			next(w, r)
			return
		}
		if !s.requireLogin {
			writeError(w, http.StatusForbidden, "host not allowed: open the dashboard via localhost or 127.0.0.1")
			return
		}
		if html {
			http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		writeError(w, http.StatusUnauthorized, "missing or invalid API key or session")
	}
}

func (s *Server) allowed(r *http.Request) bool {
	if s.validKey(requestKey(r)) {
		return true
	}
	if !s.requireLogin {
		return loopbackHost(r.Host)
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return false
	}
	ok, err := s.store.SessionValid(r.Context(), HashKey(c.Value))
	if err != nil {
		s.log.Warn("session check", "err", err)
	}
	return ok
}

func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return IsLoopback(net.JoinHostPort(host, "0"))
}

// sameOrigin guards state-changing dashboard requests against cross-site requests: they must carry the
// X-Mami header (which a cross-site form cannot send without a CORS preflight this server never grants).
func sameOrigin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Mami") == "" {
			writeError(w, http.StatusForbidden, "missing X-Mami header")
			return
		}
		next(w, r)
	}
}

func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, "")
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, r, "could not read the form")
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	if !s.validKey(key) {
		s.renderLogin(w, r, "That key is not valid.")
		return
	}
	token := randomHex(32)
	ttl := DefaultSessionTTL
	if err := s.store.AddSession(r.Context(), HashKey(token), s.now().Add(ttl)); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(ttl / time.Second),
	})
	next := r.PostFormValue("next")
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.store.DeleteSession(r.Context(), HashKey(c.Value)); err != nil && !errors.Is(err, http.ErrNoCookie) {
			s.log.Warn("logout", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
