package otpgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/sender/plivo"
	"github.com/otpgate/otpgate/module/sender/webhook"
)

// senderNamespace holds the modules that deliver codes: `sms <name>` in a
// Caddyfile loads otpgate.senders.<name>. A module there implements
// sender.Sender and, to be written in a Caddyfile, caddyfile.Unmarshaler.
const senderNamespace = "otpgate.senders"

func init() {
	caddy.RegisterModule(new(ConsoleSender))
	caddy.RegisterModule(new(PlivoSender))
	caddy.RegisterModule(new(WebhookSender))
}

// configChecker is implemented by otpgate's own senders: the checks that
// need nothing provisioned, run by App.Validate (and so by `caddy adapt`).
type configChecker interface {
	checkConfig() []error
}

// validateSender checks the sms option's JSON: a registered sender module
// whose config decodes strictly, as Caddy will decode it; otpgate's own
// senders check their values too.
func validateSender(raw json.RawMessage) []error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return []error{fmt.Errorf("sms: want an object with a type: %v", err)}
	}
	var name string
	if t, ok := obj["type"]; ok {
		if err := json.Unmarshal(t, &name); err != nil {
			return []error{errors.New("sms: type must be a string")}
		}
	}
	if name == "" {
		return []error{errors.New("sms: type is required (console, plivo, webhook or another otpgate.senders module)")}
	}
	mod, err := caddy.GetModule(senderNamespace + "." + name)
	if err != nil {
		return []error{unknownSender(name)}
	}
	delete(obj, "type")
	body, err := json.Marshal(obj)
	if err != nil {
		return []error{fmt.Errorf("sms %s: %v", name, err)}
	}
	inst := mod.New()
	if err := caddy.StrictUnmarshalJSON(body, inst); err != nil {
		return []error{fmt.Errorf("sms %s: %v", name, err)}
	}
	if _, ok := inst.(sender.Sender); !ok {
		return []error{fmt.Errorf("sms %s: module %s does not implement sender.Sender", name, mod.ID)}
	}
	if c, ok := inst.(configChecker); ok {
		return c.checkConfig()
	}
	return nil
}

func unknownSender(name string) error {
	return fmt.Errorf("sms: unknown sender %q (want console, plivo, webhook or another installed %s module)", name, senderNamespace)
}

// ConsoleSender writes each message, code included, to Caddy's log
// instead of sending it: for development only. Module
// otpgate.senders.console; Caddyfile `sms console`.
type ConsoleSender struct {
	console sender.Console
}

// CaddyModule returns the Caddy module information.
func (*ConsoleSender) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: senderNamespace + ".console", New: func() caddy.Module { return new(ConsoleSender) }}
}

// Provision implements caddy.Provisioner.
func (c *ConsoleSender) Provision(ctx caddy.Context) error {
	c.console = sender.Console{Logger: ctx.Logger()}
	ctx.Logger().Warn("sms console: codes are written to this log instead of being sent; for development only")
	return nil
}

// Send logs the message.
func (c *ConsoleSender) Send(ctx context.Context, m sender.Message) (sender.Result, error) {
	return c.console.Send(ctx, m)
}

// Supports accepts every channel.
func (c *ConsoleSender) Supports(ch string) bool { return c.console.Supports(ch) }

func (*ConsoleSender) checkConfig() []error { return nil }

// UnmarshalCaddyfile reads `sms console`.
func (*ConsoleSender) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // console
	return noMoreArgs(d, "sms console")
}

// PlivoSender delivers codes through Plivo: SMS, WhatsApp with an approved
// template, and voice calls. Module otpgate.senders.plivo; Caddyfile
// `sms plivo { ... }`.
type PlivoSender struct {
	PlivoConfig

	engine    *plivo.Sender
	authToken string
	// secret reads the server secret; the app sets it once its gateway
	// exists, before the first send
	secret atomic.Pointer[func() []byte]
}

// CaddyModule returns the Caddy module information.
func (*PlivoSender) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: senderNamespace + ".plivo", New: func() caddy.Module { return new(PlivoSender) }}
}

// Provision expands placeholders and builds the Plivo client, which
// checks the expanded config.
func (p *PlivoSender) Provision(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	c := p.engineConfig(func(s string) string { return repl.ReplaceKnown(s, "") })
	c.Secret = p.serverSecret
	p.authToken = c.AuthToken
	s, err := plivo.New(c, ctx.Logger())
	if err != nil {
		return prefixEach("sms ", err)
	}
	p.engine = s
	return nil
}

// engineConfig translates the options into the engine's, each string
// passed through value.
func (p *PlivoConfig) engineConfig(value func(string) string) plivo.Config {
	c := plivo.Config{
		AuthID:              value(p.AuthID),
		AuthToken:           value(p.AuthToken),
		From:                value(p.From),
		PowerpackUUID:       value(p.PowerpackUUID),
		APIURL:              value(p.APIURL),
		StatusURL:           value(p.StatusURL),
		Timeout:             time.Duration(p.Timeout),
		DLTEntityID:         value(p.DLTEntityID),
		DLTTemplateID:       value(p.DLTTemplateID),
		DLTTemplateCategory: value(p.DLTTemplateCategory),
		VoiceFrom:           value(p.VoiceFrom),
	}
	if t := p.WhatsAppTemplate; t != nil {
		c.WhatsAppTemplate, c.WhatsAppLanguage = t.Name, t.Language
	}
	return c
}

func (p *PlivoSender) serverSecret() []byte {
	if f := p.secret.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// useSecret gives the sender the server secret voice codes are sealed
// with.
func (p *PlivoSender) useSecret(f func() []byte) { p.secret.Store(&f) }

// Validate implements caddy.Validator.
func (p *PlivoSender) Validate() error { return errors.Join(p.checkConfig()...) }

func (p *PlivoSender) checkConfig() []error { return validatePlivo(&p.PlivoConfig) }

// Cleanup releases idle connections.
func (p *PlivoSender) Cleanup() error {
	if p.engine != nil {
		return p.engine.Close()
	}
	return nil
}

// Send delivers m through Plivo.
func (p *PlivoSender) Send(ctx context.Context, m sender.Message) (sender.Result, error) {
	return p.engine.Send(ctx, m)
}

// Supports reports the channels configured.
func (p *PlivoSender) Supports(ch string) bool { return p.engine.Supports(ch) }

// UnmarshalCaddyfile reads:
//
//	sms plivo {
//		auth_id           <id>
//		auth_token        <token>
//		from              <number>    # or: powerpack_uuid <uuid>
//		api_url           <url>
//		status_url        <url>
//		timeout           <duration>
//		whatsapp_template <name> <language>
//		voice_from        <number>
//		dlt_entity_id         <id>
//		dlt_template_id       <id>
//		dlt_template_category <category>
//	}
func (p *PlivoSender) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // plivo
	if d.NextArg() {
		return d.Errf("sms plivo: unexpected argument %q; options go in a block", d.Val())
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		name := "sms plivo " + opt
		if seen[opt] {
			return d.Errf("%s: already specified", name)
		}
		seen[opt] = true
		var err error
		switch opt {
		case "auth_id":
			p.AuthID, err = oneArg(d, name)
		case "auth_token":
			p.AuthToken, err = oneArg(d, name)
		case "from":
			p.From, err = oneArg(d, name)
		case "powerpack_uuid":
			p.PowerpackUUID, err = oneArg(d, name)
		case "api_url":
			p.APIURL, err = oneArg(d, name)
		case "status_url":
			p.StatusURL, err = oneArg(d, name)
		case "timeout":
			p.Timeout, err = durationArg(d, name)
		case "whatsapp_template":
			var tpl WhatsAppTemplate
			if tpl.Name, tpl.Language, err = twoArgs(d, name); err == nil {
				p.WhatsAppTemplate = &tpl
			}
		case "voice_from":
			p.VoiceFrom, err = oneArg(d, name)
		case "dlt_entity_id":
			p.DLTEntityID, err = oneArg(d, name)
		case "dlt_template_id":
			p.DLTTemplateID, err = oneArg(d, name)
		case "dlt_template_category":
			p.DLTTemplateCategory, err = oneArg(d, name)
		default:
			return d.Errf("sms plivo: unknown option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// WebhookSender POSTs each code to a URL of yours in the payload of
// Supabase's Send SMS hook, signed per Standard Webhooks. Module
// otpgate.senders.webhook; Caddyfile `sms webhook { ... }`.
type WebhookSender struct {
	WebhookConfig

	engine *webhook.Sender
}

// CaddyModule returns the Caddy module information.
func (*WebhookSender) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: senderNamespace + ".webhook", New: func() caddy.Module { return new(WebhookSender) }}
}

// Provision expands placeholders and prepares the client.
func (w *WebhookSender) Provision(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	expand := func(s string) string { return repl.ReplaceKnown(s, "") }
	if w.Secret != "" && expand(w.Secret) == "" {
		return fmt.Errorf("sms webhook: secret: %q expands to nothing", w.Secret)
	}
	s, err := webhook.New(webhook.Config{
		URL:      expand(w.URL),
		Secret:   expand(w.Secret),
		Timeout:  time.Duration(w.Timeout),
		Channels: w.Channels,
	}, ctx.Logger())
	if err != nil {
		return fmt.Errorf("sms %w", err)
	}
	w.engine = s
	return nil
}

// Validate implements caddy.Validator.
func (w *WebhookSender) Validate() error { return errors.Join(w.checkConfig()...) }

func (w *WebhookSender) checkConfig() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case w.URL == "":
		add("sms webhook: url is required")
	case !hasPlaceholder(w.URL):
		if err := webhook.CheckURL(w.URL); err != nil {
			add("sms %v", err)
		}
	}
	switch {
	case w.Secret == "":
		add("sms webhook: secret is required (a Standard Webhooks secret, whsec_<base64>)")
	case !hasPlaceholder(w.Secret):
		if _, err := webhook.ParseSecret(w.Secret); err != nil {
			add("sms %v", err)
		}
	}
	if w.Timeout < 0 {
		add("sms webhook timeout: must be positive (got %v)", time.Duration(w.Timeout))
	}
	for _, ch := range w.Channels {
		if ch != sender.SMS && ch != sender.WhatsApp && ch != sender.Voice {
			add("sms webhook channels: unknown channel %q (want sms, whatsapp or voice)", ch)
		}
	}
	return errs
}

// Cleanup releases idle connections.
func (w *WebhookSender) Cleanup() error {
	if w.engine != nil {
		return w.engine.Close()
	}
	return nil
}

// Send POSTs m to the webhook.
func (w *WebhookSender) Send(ctx context.Context, m sender.Message) (sender.Result, error) {
	return w.engine.Send(ctx, m)
}

// Supports reports the configured channels.
func (w *WebhookSender) Supports(ch string) bool { return w.engine.Supports(ch) }

// UnmarshalCaddyfile reads:
//
//	sms webhook {
//		url      <url>
//		secret   <whsec_…>
//		timeout  <duration>
//		channels sms|whatsapp|voice...
//	}
func (w *WebhookSender) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // webhook
	if d.NextArg() {
		return d.Errf("sms webhook: unexpected argument %q; options go in a block", d.Val())
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		name := "sms webhook " + opt
		if seen[opt] {
			return d.Errf("%s: already specified", name)
		}
		seen[opt] = true
		var err error
		switch opt {
		case "url":
			w.URL, err = oneArg(d, name)
		case "secret":
			w.Secret, err = oneArg(d, name)
		case "timeout":
			w.Timeout, err = durationArg(d, name)
		case "channels":
			w.Channels = d.RemainingArgs()
			if len(w.Channels) == 0 {
				return argErr(d, name)
			}
		default:
			return d.Errf("sms webhook: unknown option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var (
	_ sender.Sender         = (*ConsoleSender)(nil)
	_ sender.Sender         = (*PlivoSender)(nil)
	_ sender.Sender         = (*WebhookSender)(nil)
	_ caddy.Provisioner     = (*PlivoSender)(nil)
	_ caddy.Validator       = (*PlivoSender)(nil)
	_ caddy.CleanerUpper    = (*PlivoSender)(nil)
	_ caddy.Provisioner     = (*WebhookSender)(nil)
	_ caddy.Validator       = (*WebhookSender)(nil)
	_ caddy.CleanerUpper    = (*WebhookSender)(nil)
	_ caddyfile.Unmarshaler = (*ConsoleSender)(nil)
	_ caddyfile.Unmarshaler = (*PlivoSender)(nil)
	_ caddyfile.Unmarshaler = (*WebhookSender)(nil)
)
