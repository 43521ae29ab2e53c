// Command authsvc is the forward_auth peer of the load test: a small Go
// auth service in the style of Authelia's forward-auth endpoint. For every
// request it verifies the bearer JWT against otpgate's JWKS (ES256) and
// answers 200 with identity headers, or 401.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"flag"
	"log"
	"math/big"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9100", "listen address")
	jwksURL := flag.String("jwks", "", "otpgate JWKS URL")
	flag.Parse()
	keys := loadJWKS(*jwksURL)
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired(), jwt.WithAudience("authenticated"))
	http.HandleFunc("/verify", func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if !strings.HasPrefix(h, "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		claims := jwt.MapClaims{}
		_, err := parser.ParseWithClaims(h[7:], claims, func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			return keys[kid], nil
		})
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		sub, _ := claims["sub"].(string)
		phone, _ := claims["phone"].(string)
		w.Header().Set("X-Auth-User-Id", sub)
		w.Header().Set("X-Auth-Phone", phone)
		w.WriteHeader(http.StatusOK)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}

func loadJWKS(url string) map[string]*ecdsa.PublicKey {
	res, err := http.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct{ Kid, Kty, Crv, X, Y string } `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		log.Fatal(err)
	}
	out := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "EC" {
			continue
		}
		x, _ := base64.RawURLEncoding.DecodeString(k.X)
		y, _ := base64.RawURLEncoding.DecodeString(k.Y)
		out[k.Kid] = &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	}
	return out
}
