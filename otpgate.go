// Package otpgate is the root of the otpgate module. Importing it
// registers otpgate's Caddy modules (the code lives in ./module), so that
// xcaddy builds Caddy from a checkout with the module's own path:
//
//	go run github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5 build v2.11.9 --with github.com/otpgate/otpgate=.
package otpgate

import _ "github.com/otpgate/otpgate/module"
