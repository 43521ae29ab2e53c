package gateway

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/loginpage"
	"github.com/otpgate/otpgate/module/phone"
)

// gate decides an upstream request for this site and renders the
// decision. It returns the identity of a session that may pass; for any
// other decision the answer is written (ok false), unless the site leaves
// it to the server's error routes (Site.Restyle): then only its headers
// are set and refusal is the error to hand them.
func (s *Site) gate(w http.ResponseWriter, r *http.Request, clientIP string) (id *Identity, ok bool, refusal error) {
	return s.render(w, r, s.G.decide(r, clientIP, s.Roles))
}

// render is the one place a gate decision becomes an answer: the session
// cookies it carries, the gate_decisions_total count, and the response.
func (s *Site) render(w http.ResponseWriter, r *http.Request, d decision) (id *Identity, ok bool, refusal error) {
	for _, c := range d.cookies {
		http.SetCookie(w, c)
	}
	m := s.G.metrics()
	if d.refreshed {
		m.gateDecision(s.server(r), "refreshed")
	}
	m.gateDecision(s.server(r), d.metric())
	switch d.verdict {
	case allow:
		return d.id, true, nil
	case forbid:
		return nil, false, s.forbidden(w, r, d)
	case unavailable:
		s.logger(r).Error("gate: session cannot be checked, refusing", zap.Error(d.err))
		e := apierr.Wrap(http.StatusServiceUnavailable, apierr.StoreUnavailable, "The service is temporarily unavailable. Try again in a moment.", d.err)
		e.RetryAfter = 5 * time.Second
		apierr.Write(w, r, e)
		return nil, false, nil
	}
	return nil, false, s.unauthorized(w, r)
}

// forbidden answers a signed-in user whose roles this site does not admit:
// 403 no_access, or for a browser navigation a page that names the
// (masked) phone and offers to sign in with another number.
func (s *Site) forbidden(w http.ResponseWriter, r *http.Request, d decision) error {
	e := apierr.New(http.StatusForbidden, apierr.NoAccess, "Your account does not have access to this site.")
	if s.restyled(w, r, e) {
		return e
	}
	if isBrowserNavigation(r) && s.Page != nil {
		masked := ""
		if num, err := phone.Parse(d.id.Phone); err == nil {
			masked = num.Masked()
		}
		s.Page.RenderNoAccess(w, r, masked, loginpage.SafeReturnTo(r.URL.RequestURI()))
		return nil
	}
	apierr.Write(w, r, e)
	return nil
}

// unauthorized answers a request without a usable session: browser
// navigations go to the login page, everything else gets 401.
func (s *Site) unauthorized(w http.ResponseWriter, r *http.Request) error {
	if isBrowserNavigation(r) {
		s.loginRedirect(w, r)
		return nil
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="otpgate"`)
	e := apierr.New(http.StatusUnauthorized, apierr.NoAuthorization, "Sign in to continue.")
	if s.restyled(w, r, e) {
		return e
	}
	apierr.Write(w, r, e)
	return nil
}

// restyled reports whether the server's error routes answer e instead
// (Site.Restyle); the error code header is set for them.
func (s *Site) restyled(w http.ResponseWriter, r *http.Request, e *apierr.Error) bool {
	if s.Restyle == nil || !s.Restyle(r, e.Status) {
		return false
	}
	w.Header().Set("x-sb-error-code", e.Code)
	return true
}
