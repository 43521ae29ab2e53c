package loginpage

import (
	"net/http"
	"net/url"
)

// NoAccessData is what the no-access page is executed with: the login
// page's variables, with ReturnTo the page that was refused, plus the
// signed-in phone and the way back to the login page.
type NoAccessData struct {
	TemplateData
	// MaskedPhone is the phone of the session, masked as the API masks it
	// (+1***-***-0123); "" when unknown.
	MaskedPhone string
	// LoginURL is LoginPath with return_to set to ReturnTo, where "Use a
	// different number" goes once signed out.
	LoginURL string
}

func noAccessData(base TemplateData, maskedPhone string) NoAccessData {
	return NoAccessData{
		TemplateData: base,
		MaskedPhone:  maskedPhone,
		LoginURL:     base.LoginPath + "?" + ReturnToParam + "=" + url.QueryEscape(base.ReturnTo),
	}
}

// RenderNoAccess answers a signed-in visitor whose roles the site does not
// admit: 403 with a page that names the (masked) phone they are signed in
// with and offers to sign in with another number. returnTo, the page that
// was refused, is sanitised with SafeReturnTo; the login page returns there
// after the next sign-in. The page has the login page's look, security
// headers and a fresh CSP nonce, and is never cached.
func (p *Page) RenderNoAccess(w http.ResponseWriter, r *http.Request, maskedPhone, returnTo string) {
	data := p.localized(r, returnTo)
	w.Header().Add("Vary", "Accept-Language")
	writePage(w, r, http.StatusForbidden, p.noAccess, noAccessName, noAccessData(data, maskedPhone), data.Nonce)
}
