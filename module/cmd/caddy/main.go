// Command caddy is Caddy with the standard modules and otpgate.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/otpgate/otpgate/module"
)

func main() {
	caddycmd.Main()
}
