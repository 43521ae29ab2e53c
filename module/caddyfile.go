package otpgate

import (
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/otpgate/otpgate/module/gateway"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("otpgate", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("otpgate", parseHandlerDirective)
	// An auth handler: after the path is final (rewrite, uri, try_files)
	// and beside basic_auth, but before request_header (which may then use
	// {http.auth.user.*}), encode, templates, the routing blocks and every
	// handler that responds (respond, reverse_proxy, file_server, ...).
	httpcaddyfile.RegisterDirectiveOrder("otpgate", httpcaddyfile.After, "basic_auth")
}

// parseGlobalOption parses the `otpgate` global option into the app's JSON.
// The option may appear more than once; later blocks add to earlier ones.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if existing != nil {
		prev, ok := existing.(httpcaddyfile.App)
		if !ok {
			return nil, d.Errf("otpgate: existing global option of unexpected type %T", existing)
		}
		if err := json.Unmarshal(prev.Value, app); err != nil {
			return nil, d.Errf("otpgate: %v", err)
		}
	}
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	if err := app.Validate(); err != nil {
		return nil, app.pos.errorsAt(d, err)
	}
	return httpcaddyfile.App{Name: "otpgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseHandlerDirective parses the `otpgate` site directive.
func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if err := handler.Validate(); err != nil {
		return nil, handler.pos.errorsAt(h.Dispenser, err)
	}
	return handler, nil
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler for the global
// option. Syntax:
//
//	otpgate {
//		store memory | redis <url>
//		sms console
//		sms plivo {
//			auth_id           <id>
//			auth_token        <token>
//			from              <number>    # or: powerpack_uuid <uuid>
//			api_url           <url>
//			timeout           <duration>
//			whatsapp_template <name> <language>
//			voice_from        <number>
//			dlt_entity_id <id>, dlt_template_id <id>, dlt_template_category <category>
//		}
//		sms webhook {
//			url     <url>
//			secret  <whsec_…>
//			timeout <duration>
//		}
//		sms <module> ...                  # any otpgate.senders module
//		otp {
//			length       <digits>
//			ttl          <duration>
//			max_attempts <n>
//			resend_after <duration>
//		}
//		limit phone|ip <events> <window>
//		countries <region...>
//		test_phone <e164> <code>
//		create_user true|false
//		captcha turnstile|hcaptcha|recaptcha <secret> [verify_url <url>]
//		signing_key_file <pem>
//		signing_alg      ES256|EdDSA|RS256
//		hmac_secret      <secret>
//		access_ttl             <duration>
//		refresh_ttl            <duration>
//		refresh_reuse_interval <duration>
//		cookie_domain    <domain>
//		app_name         <name>
//		message_template [<language>] <text>   # once per language
//		issuer           <iss>
//		audience         <aud>
//		public_url       <url>
//		signup           closed|open
//		users {
//			<e164> [<role>...]
//			file <path>
//		}
//		inactivity_timeout <duration>
//		service_key      <key>
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option's name
	if d.NextArg() {
		return d.Errf("otpgate: unexpected argument %q; options go in a block", d.Val())
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		a.pos.add(opt, d)
		// countries, test_phone and users add up; limit and
		// message_template are checked per key.
		repeatable := opt == "countries" || opt == "test_phone" || opt == "limit" || opt == "users" || opt == "message_template"
		if seen[opt] && !repeatable {
			return d.Errf("%s: already specified", opt)
		}
		seen[opt] = true

		var err error
		switch opt {
		case "store":
			err = a.parseStore(d)
		case "sms":
			err = a.parseSMS(d)
		case "otp":
			err = a.parseOTP(d)
		case "limit":
			err = a.parseLimit(d, seen)
		case "countries":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return argErr(d, "countries")
			}
			for _, region := range args {
				a.pos.add("countries "+region, d)
			}
			a.Countries = append(a.Countries, args...)
		case "test_phone":
			var phone, code string
			if phone, code, err = twoArgs(d, opt); err != nil {
				return err
			}
			if _, dup := a.TestPhones[phone]; dup {
				return d.Errf("test_phone: %s already specified", phone)
			}
			if a.TestPhones == nil {
				a.TestPhones = make(map[string]string)
			}
			a.TestPhones[phone] = code
			a.pos.add("test_phone "+phone, d)
		case "create_user":
			var v string
			if v, err = oneArg(d, opt); err != nil {
				return err
			}
			switch v {
			case "true":
				a.CreateUser = true
			case "false":
				a.CreateUser = false
			default:
				return d.Errf("create_user: want true or false, got %q", v)
			}
		case "captcha":
			err = a.parseCaptcha(d)
		case "signing_key_file":
			a.SigningKeyFile, err = oneArg(d, opt)
		case "signing_alg":
			a.SigningAlg, err = oneArg(d, opt)
		case "hmac_secret":
			a.HMACSecret, err = oneArg(d, opt)
		case "access_ttl":
			a.AccessTTL, err = durationArg(d, opt)
		case "refresh_ttl":
			a.RefreshTTL, err = durationArg(d, opt)
		case "refresh_reuse_interval":
			var dur caddy.Duration
			if dur, err = durationArg(d, opt); err == nil {
				a.RefreshReuseInterval = &dur
			}
		case "cookie_domain":
			a.CookieDomain, err = oneArg(d, opt)
		case "app_name":
			a.AppName, err = oneArg(d, opt)
		case "message_template":
			err = a.parseMessageTemplate(d, seen)
		case "issuer":
			a.Issuer, err = oneArg(d, opt)
		case "audience":
			a.Audience, err = oneArg(d, opt)
		case "public_url":
			a.PublicURL, err = oneArg(d, opt)
		case "signup":
			var v string
			if v, err = oneArg(d, opt); err != nil {
				return err
			}
			if v != "open" && v != "closed" {
				return d.Errf("signup: want open or closed, got %q", v)
			}
			a.Signup = v
		case "users":
			err = a.parseUsers(d)
		case "inactivity_timeout":
			a.InactivityTimeout, err = durationArg(d, opt)
		case "service_key":
			a.ServiceKey, err = oneArg(d, opt)
		default:
			return d.Errf("otpgate: unknown option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *App) parseStore(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return argErr(d, "store")
	}
	store := &StoreConfig{Type: d.Val()}
	switch store.Type {
	case "memory":
		if err := noMoreArgs(d, "store memory"); err != nil {
			return err
		}
	case "redis":
		url, err := oneArg(d, "store redis")
		if err != nil {
			return err
		}
		store.URL = url
	default:
		return d.Errf("store: unknown type %q (want memory or redis)", store.Type)
	}
	a.Store = store
	return nil
}

// parseSMS reads `sms <name> ...`: the sender module otpgate.senders.<name>
// parses the rest of the line and its block itself, so a third-party
// sender is written like the built-in ones.
func (a *App) parseSMS(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return argErr(d, "sms")
	}
	name := d.Val()
	id := senderNamespace + "." + name
	if _, err := caddy.GetModule(id); err != nil {
		return d.Err(unknownSender(name).Error())
	}
	a.pos.addBlock("sms "+name, d)
	unm, err := caddyfile.UnmarshalModule(d, id)
	if err != nil {
		return err
	}
	a.SMS = caddyconfig.JSONModuleObject(unm, "type", name, nil)
	return nil
}

func (a *App) parseOTP(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Errf("otp: unexpected argument %q; options go in a block", d.Val())
	}
	otp := a.OTP
	if otp == nil {
		otp = new(OTPConfig)
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		name := "otp " + opt
		a.pos.add(name, d)
		if seen[opt] {
			return d.Errf("%s: already specified", name)
		}
		seen[opt] = true
		var err error
		switch opt {
		case "length":
			otp.Length, err = intArg(d, name)
		case "ttl":
			otp.TTL, err = durationArg(d, name)
		case "max_attempts":
			otp.MaxAttempts, err = intArg(d, name)
		case "resend_after":
			var dur caddy.Duration
			if dur, err = durationArg(d, name); err == nil {
				otp.ResendAfter = &dur
			}
		default:
			return d.Errf("otp: unknown option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	a.OTP = otp
	return nil
}

func (a *App) parseLimit(d *caddyfile.Dispenser, seen map[string]bool) error {
	args := d.RemainingArgs()
	if len(args) != 3 {
		return d.Errf("limit: want `limit phone|ip <events> <window>`, got %d arguments", len(args))
	}
	name := "limit " + args[0]
	a.pos.add(name, d)
	var target **LimitConfig
	switch args[0] {
	case "phone":
		target = &a.PhoneLimit
	case "ip":
		target = &a.IPLimit
	default:
		return d.Errf("limit: unknown key %q (want phone or ip)", args[0])
	}
	if seen[name] {
		return d.Errf("%s: already specified", name)
	}
	seen[name] = true
	if d.NextBlock(d.Nesting()) {
		return d.Errf("%s: unexpected block", name)
	}
	events, err := strconv.Atoi(args[1])
	if err != nil {
		return d.Errf("%s: invalid events %q: want an integer", name, args[1])
	}
	window, err := caddy.ParseDuration(args[2])
	if err != nil {
		return d.Errf("%s: invalid window %q: %v", name, args[2], err)
	}
	*target = &LimitConfig{Events: events, Window: caddy.Duration(window)}
	return nil
}

// parseUsers reads a users block: one phone per line with its roles, and
// at most one `file <path>`. Each line is checked where it stands.
func (a *App) parseUsers(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Errf("users: unexpected argument %q; list phones in a block", d.Val())
	}
	u := a.Users
	if u == nil {
		u = new(UsersConfig)
	}
	if u.Phones == nil {
		u.Phones = make(map[string][]string)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() == "file" {
			if u.File != "" {
				return d.Err("users file: already specified")
			}
			file, err := oneArg(d, "users file")
			if err != nil {
				return err
			}
			u.File = file
			continue
		}
		number := d.Val()
		roles := d.RemainingArgs()
		if err := gateway.AddUser(u.Phones, number, roles); err != nil {
			return d.Errf("users: %v", err)
		}
		if d.NextBlock(d.Nesting()) {
			return d.Errf("users %s: unexpected block", number)
		}
	}
	if len(u.Phones) == 0 {
		u.Phones = nil
	}
	a.Users = u
	return nil
}

func (a *App) parseCaptcha(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	c := new(CaptchaConfig)
	switch {
	case len(args) == 2:
	case len(args) == 4 && args[2] == "verify_url":
		c.VerifyURL = args[3]
	default:
		return d.Err("captcha: want `captcha turnstile|hcaptcha|recaptcha <secret> [verify_url <url>]`")
	}
	c.Provider, c.Secret = args[0], args[1]
	if d.NextBlock(d.Nesting()) {
		return d.Err("captcha: unexpected block")
	}
	a.Captcha = c
	return nil
}

// parseMessageTemplate reads `message_template <text>` (the default
// text) or `message_template <language> <text>` (the text for visitors of
// the login page in that language), each at most once.
func (a *App) parseMessageTemplate(d *caddyfile.Dispenser, seen map[string]bool) error {
	args := d.RemainingArgs()
	if d.NextBlock(d.Nesting()) {
		return d.Err("message_template: unexpected block")
	}
	key, lang, text := "message_template", "", ""
	switch len(args) {
	case 1:
		text = args[0]
	case 2:
		lang, text = args[0], args[1]
		key += " " + lang
	default:
		return d.Errf("message_template: want [<language>] <text>, got %d arguments", len(args))
	}
	if seen[key+"\x00"] {
		return d.Errf("%s: already specified", key)
	}
	seen[key+"\x00"] = true
	if lang == "" {
		a.MessageTemplate = text
		return nil
	}
	a.pos.add(key, d)
	if a.MessageTemplates == nil {
		a.MessageTemplates = make(map[string]string)
	}
	a.MessageTemplates[lang] = text
	return nil
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Syntax:
//
//	otpgate [<matcher>] {
//		api_prefix     <path>
//		login_path     <path>
//		public         <path...>
//		gate           on|off
//		app_name       <name>
//		accent_color   <#hex>
//		login_template <file>
//		default_country <region>   # e.g. GB
//		language       <tag>       # en es fr de pt-BR hi id ar zh-CN
//		roles          <role...>
//		cors_origins   <origin...> # e.g. https://app.example.com
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.Errf("otpgate: unexpected argument %q; options go in a block", d.Val())
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		h.pos.add(opt, d)
		if seen[opt] && opt != "public" && opt != "roles" && opt != "cors_origins" {
			return d.Errf("%s: already specified", opt)
		}
		seen[opt] = true
		var err error
		switch opt {
		case "api_prefix":
			h.APIPrefix, err = oneArg(d, opt)
		case "login_path":
			h.LoginPath, err = oneArg(d, opt)
		case "public":
			paths := d.RemainingArgs()
			if len(paths) == 0 {
				return argErr(d, "public")
			}
			for _, p := range paths {
				h.pos.add("public "+p, d)
			}
			h.Public = append(h.Public, paths...)
		case "gate":
			var v string
			if v, err = oneArg(d, opt); err != nil {
				return err
			}
			switch v {
			case "on":
				h.Gate = new(true)
			case "off":
				h.Gate = new(false)
			default:
				return d.Errf("gate: want on or off, got %q", v)
			}
		case "app_name":
			h.AppName, err = oneArg(d, opt)
		case "accent_color":
			if d.CountRemainingArgs() == 0 {
				return d.Err(`accent_color: missing colour; quote it, as in accent_color "#4f46e5" (an unquoted # starts a comment)`)
			}
			h.AccentColor, err = oneArg(d, opt)
		case "login_template":
			h.LoginTemplate, err = oneArg(d, opt)
		case "default_country":
			h.DefaultCountry, err = oneArg(d, opt)
		case "language":
			h.Language, err = oneArg(d, opt)
		case "roles":
			roles := d.RemainingArgs()
			if len(roles) == 0 {
				return argErr(d, "roles")
			}
			for _, r := range roles {
				if !gateway.ValidRole(r) {
					return d.Errf("roles: %s", badRole(r))
				}
			}
			h.Roles = append(h.Roles, roles...)
		case "cors_origins":
			origins := d.RemainingArgs()
			if len(origins) == 0 {
				return argErr(d, "cors_origins")
			}
			for _, o := range origins {
				h.pos.add("cors_origins "+o, d)
			}
			h.CORSOrigins = append(h.CORSOrigins, origins...)
		default:
			return d.Errf("otpgate: unknown option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// oneArg reads exactly one argument for option name.
func oneArg(d *caddyfile.Dispenser, name string) (string, error) {
	if !d.NextArg() {
		return "", argErr(d, name)
	}
	v := d.Val()
	if err := noMoreArgs(d, name); err != nil {
		return "", err
	}
	return v, nil
}

// argErr reports a missing or extra argument of option name.
func argErr(d *caddyfile.Dispenser, name string) error {
	return d.Errf("%s: wrong argument count or unexpected line ending after '%s'", name, d.Val())
}

// twoArgs reads exactly two arguments for option name.
func twoArgs(d *caddyfile.Dispenser, name string) (string, string, error) {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return "", "", d.Errf("%s: want 2 arguments, got %d", name, len(args))
	}
	if d.NextBlock(d.Nesting()) {
		return "", "", d.Errf("%s: unexpected block", name)
	}
	return args[0], args[1], nil
}

// noMoreArgs refuses anything after an option's arguments.
func noMoreArgs(d *caddyfile.Dispenser, name string) error {
	if d.NextArg() {
		return d.Errf("%s: unexpected argument %q", name, d.Val())
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("%s: unexpected block", name)
	}
	return nil
}

func durationArg(d *caddyfile.Dispenser, name string) (caddy.Duration, error) {
	v, err := oneArg(d, name)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("%s: invalid duration %q: %v", name, v, err)
	}
	return caddy.Duration(dur), nil
}

func intArg(d *caddyfile.Dispenser, name string) (int, error) {
	v, err := oneArg(d, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, d.Errf("%s: invalid integer %q", name, v)
	}
	return n, nil
}

var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
