package gateway

import (
	"context"
	"net/http"
	"time"
)

func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := g.cfg.Store.Ping(ctx); err != nil {
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "revocation_feed": g.feedOK.Load()})
	return nil
}
