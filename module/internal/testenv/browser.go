package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// BrowserBudget bounds the life of a test's browser when the test itself
// has no sooner deadline, so a DOM condition that never comes true fails the
// test instead of hanging it until go test's global timeout.
const BrowserBudget = 2 * time.Minute

// ScreenshotsEnv names the directory that Screenshot writes to when set.
const ScreenshotsEnv = "OTPGATE_SCREENSHOTS"

// Chromium starts a headless Chromium for the test, with a fresh profile,
// and returns a chromedp context bound to one tab of it. The browser stops
// when the test ends. Without a browser the test fails, saying how to
// install one: nothing is skipped silently.
//
// The browser is found at $CHROMIUM_PATH, /usr/bin/chromium, or as
// chromium, chromium-browser, google-chrome or google-chrome-stable on PATH.
func Chromium(t testing.TB) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Fatal("chromium not found: install it with `apt-get install chromium` (Debian/Ubuntu), or set CHROMIUM_PATH")
	}
	profile := t.TempDir()
	var output syncBuffer

	deadline := time.Now().Add(BrowserBudget)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if td, ok := d.Deadline(); ok && td.Add(-5*time.Second).Before(deadline) {
			deadline = td.Add(-5 * time.Second)
		}
	}
	parent, cancelParent := context.WithDeadline(context.Background(), deadline)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.CombinedOutput(&output),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)

	t.Cleanup(func() {
		if t.Failed() && output.Len() > 0 {
			t.Logf("chromium output:\n%s", tail(withoutNoise(output.String()), 4096))
		}
		_ = chromedp.Cancel(ctx) // closes the browser gracefully
		cancelTab()
		cancelAlloc() // waits for the process to exit
		cancelParent()
	})

	// Start the browser now so a broken installation fails here, with its
	// output, rather than in the middle of the test.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium (%s): %v\n%s", path, err, tail(output.String(), 4096))
	}
	return ctx
}

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	if st, err := os.Stat("/usr/bin/chromium"); err == nil && !st.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// PageLog records what a tab does from the moment RecordPage is called:
// the URL of every request it makes, and its script exceptions, console
// errors and browser errors such as CSP violations (but not HTTP error
// statuses, which tests provoke on purpose). It is safe for concurrent use.
type PageLog struct {
	mu       sync.Mutex
	requests []string
	errors   []string
}

// RecordPage starts recording the tab of ctx (a context from Chromium).
// Call it before navigating.
func RecordPage(t testing.TB, ctx context.Context) *PageLog {
	t.Helper()
	l := &PageLog{}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			l.add(&l.requests, ev.Request.URL)
		case *network.EventWebSocketCreated:
			l.add(&l.requests, ev.URL)
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			l.add(&l.errors, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					if a.Description != "" {
						parts = append(parts, a.Description)
					} else {
						parts = append(parts, string(a.Value))
					}
				}
				l.add(&l.errors, "console.error: "+strings.Join(parts, " "))
			}
		case *log.EventEntryAdded:
			// Network entries are HTTP error statuses, which tests script
			// on purpose; the rest (security, javascript, ...) are faults.
			if ev.Entry.Level == log.EntryLevelError && ev.Entry.Source != log.EntrySourceNetwork {
				l.add(&l.errors, fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatalf("record page: %v", err)
	}
	return l
}

func (l *PageLog) add(list *[]string, s string) {
	l.mu.Lock()
	*list = append(*list, s)
	l.mu.Unlock()
}

// Requests returns the URLs requested so far, in order.
func (l *PageLog) Requests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.requests...)
}

// Errors returns the errors seen so far, in order.
func (l *PageLog) Errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors...)
}

// AssertSameOrigin fails the test for each request that left origin (such
// as "http://127.0.0.1:41234"). data: URLs stay in the page and are allowed.
func (l *PageLog) AssertSameOrigin(t testing.TB, origin string) {
	t.Helper()
	want, err := url.Parse(origin)
	if err != nil {
		t.Fatalf("origin %q: %v", origin, err)
	}
	for _, raw := range l.Requests() {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("request to unparsable URL %q", raw)
			continue
		}
		if u.Scheme == "data" {
			continue
		}
		if u.Scheme != want.Scheme || u.Host != want.Host {
			t.Errorf("request left the test origin %s: %s", origin, raw)
		}
	}
}

// AssertNoErrors fails the test if the page logged any error.
func (l *PageLog) AssertNoErrors(t testing.TB) {
	t.Helper()
	for _, e := range l.Errors() {
		t.Errorf("page error: %s", e)
	}
}

// ScreenshotDir is $OTPGATE_SCREENSHOTS when set (created if missing), and
// a temporary directory of the test otherwise.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot dir: %v", err)
	}
	return dir
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot writes a PNG of the whole page of ctx to dir/<test>-<name>.png
// (dir "" means ScreenshotDir(t)) and logs its path.
func Screenshot(t testing.TB, ctx context.Context, dir, name string) string {
	t.Helper()
	if dir == "" {
		dir = ScreenshotDir(t)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(dir, unsafeFileChars.ReplaceAllString(t.Name()+"-"+name, "_")+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot: %s", file)
	return file
}

// syncBuffer collects the browser's output, written from another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// withoutNoise drops the lines of Chromium's output about D-Bus, which a
// container never has and which say nothing about the test.
func withoutNoise(s string) string {
	var keep []string
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.Contains(line, "dbus") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
