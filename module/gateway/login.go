package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/loginpage"
)

func (s *Site) serveLogin(w http.ResponseWriter, r *http.Request) {
	if s.Page == nil {
		apierr.Write(w, r, apierr.New(http.StatusNotFound, apierr.NotFound, "No login page is configured."))
		return
	}
	s.warnIfInsecure(r)
	s.Page.Render(w, r, loginpage.SafeReturnTo(r.URL.Query().Get("return_to")))
}

// loginRedirect sends a browser to the login page with a same-origin
// return_to.
func (s *Site) loginRedirect(w http.ResponseWriter, r *http.Request) {
	target := loginpage.SafeReturnTo(r.URL.RequestURI())
	u := s.LoginPath + "?return_to=" + url.QueryEscape(target)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

// isBrowserNavigation: a top-level page load that a person can be sent
// to the login page from. Scripts get a 401 they can act on instead.
func isBrowserNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
