package gateway

import "net/http"

func (g *Gateway) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=600")
	_, _ = w.Write(g.tokens().JWKS())
}
