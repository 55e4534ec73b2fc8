package server

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/mami-lab/mami/runs/server/store"
)

//go:embed web/templates/*.html
var templateFS embed.FS

//go:embed web/static
var staticFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"version": func() string { return Version },
}).ParseFS(templateFS, "web/templates/*.html"))

// pageData is what every dashboard template gets.
type pageData struct {
	Title        string
	Entity       string
	Project      string
	Run          string
	RequireLogin bool
	Error        string
	Next         string
	Projects     []store.Project
}

const pageCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func (s *Server) render(w http.ResponseWriter, status int, name string, d pageData) {
	d.RequireLogin = s.requireLogin
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	ps, err := s.store.Projects(r.Context())
	if err != nil {
		writeStoreError(w, err)
		return
	}
	s.render(w, http.StatusOK, "index.html", pageData{Title: "Projects", Projects: ps})
}

func (s *Server) handleProjectPage(w http.ResponseWriter, r *http.Request) {
	e, p := r.PathValue("entity"), r.PathValue("project")
	s.render(w, http.StatusOK, "project.html", pageData{Title: p, Entity: e, Project: p})
}

func (s *Server) handleRunPage(w http.ResponseWriter, r *http.Request) {
	k := runKey(r)
	run, err := s.store.Run(r.Context(), k)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.render(w, http.StatusNotFound, "error.html", pageData{Title: "Not found", Error: "No run " + k.String() + "."})
			return
		}
		writeStoreError(w, err)
		return
	}
	s.render(w, http.StatusOK, "run.html", pageData{Title: run.DisplayName, Entity: k.Entity, Project: k.Project, Run: k.Name})
}

func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/static/")
	sub, _ := fs.Sub(staticFS, "web/static")
	b, err := fs.ReadFile(sub, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch path.Ext(name) {
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".svg":
		w.Header().Set("Content-Type", "image/svg+xml")
	}
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, msg string) {
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostFormValue("next")
	}
	status := http.StatusOK
	if msg != "" {
		status = http.StatusUnauthorized
	}
	s.render(w, status, "login.html", pageData{Title: "Sign in", Error: msg, Next: next})
}
