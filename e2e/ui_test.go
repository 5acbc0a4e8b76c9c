package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"rotator/workflows"
)

var uiScreenshots = flag.String("ui-screenshots", "",
	"write the Web UI test's screenshots into this folder, relative to the repository root (docs/ui holds the committed ones)")

// TestWebUIApprovesRotation does in the Temporal Web UI, in a real browser,
// what the runbook's users do with the CLI: find the rotation in grace by
// its search attributes, read its status query, and approve it with the
// UI's own Send a Signal form. The Temporal client and the cluster then
// prove that the rotation completed and the old Secret is gone.
func TestWebUIApprovesRotation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	// The browser first: a machine without chromium fails at once.
	b := newBrowser(t, ctx)
	f := newFixture(t, ctx, "", deployment("orchestrator", 2, envRef("app-jwt")))
	oldData, _ := f.secretData(ctx, f.secret)
	if out, err := f.starter(ctx, "rotate", f.target, "--by", "e2e"); err != nil {
		t.Fatalf("starter rotate: %v\n%s", err, out)
	}
	id := workflows.WorkflowID(f.target)
	newName := f.secret + "-2"
	waitForStep(t, ctx, f, workflows.StepGrace)

	// 1. The list, filtered by the search attribute, with the RotationStep
	// column added through the table's own settings.
	query := fmt.Sprintf("%s=%q", workflows.SearchTarget.GetName(), f.target)
	listURL := b.url("workflows?query=" + url.QueryEscape(query))
	b.navigate("open the workflow list", listURL)
	rowLink := fmt.Sprintf(`//table//a[normalize-space()=%q]`, id)
	b.waitVisible("find the rotation's row", rowLink, true)
	b.click("open the table settings", `//*[@data-testid="workflows-summary-table-configuration-button"]`)
	b.click("add the RotationStep column", `//*[@data-testid="orderable-list-item-RotationStep-add-button"]`)
	// The run ID says nothing to an engineer and pushes RotationStep off screen.
	b.click("remove the Run ID column", `//button[@aria-label="Remove Run ID column"]`)
	b.click("close the table settings", `//*[@data-testid="drawer-close-button"]`)
	b.waitJS("the table settings close", `!document.querySelector("#workflows-table-configuration-drawer")`, false)
	b.assertListRow(id, map[string]string{"Status": "running", "RotationStep": string(workflows.StepGrace)})
	b.screenshot("1-list", false)

	// 2. The workflow page.
	b.click("open the rotation", rowLink)
	b.waitJS("the workflow page shows the rotation running", fmt.Sprintf(
		`[...document.querySelectorAll('[data-testid="workflow-id-heading"]')].some(h => h.innerText.includes(%q)) &&
		 %s === "running"`, id, jsStatus), false)
	// Let the page finish loading before the picture: the input and the
	// timeline's activities come in after the header.
	b.waitJS("the workflow page shows its input and timeline", fmt.Sprintf(`
		[...document.querySelectorAll('[role="textbox"]')].map(%s).some(t => t.includes(%q)) &&
		document.body.textContent.includes("PromoteAndAwait")`, jsEditorText, f.target), false)
	// The timeline says what the promote activity did.
	b.waitJS("the timeline names the repointed consumer", fmt.Sprintf(`document.body.innerText.includes(%q)`,
		"repoint deployment/orchestrator to "+newName), false)
	b.screenshot("2-workflow-in-grace", false)

	// What the rotation is and what it waits for: the summary and details
	// it was started with, and its current details (grace deadline, the
	// commands), in the User Metadata tab.
	b.click("open the User Metadata tab", `//a[normalize-space()="User Metadata"]`)
	for _, want := range []string{
		workflows.Summary(f.target, "jwt", "e2e"),
		"Secret " + f.ns + "/" + f.secret,
		"grace until ",
		"starter approve " + f.target,
	} {
		// The UI renders each field's Markdown in a same-origin iframe.
		b.waitJS("the User Metadata tab says "+want, fmt.Sprintf(`[...document.querySelectorAll('iframe[id^="user-metadata"]')]
			.map(f => f.contentDocument && f.contentDocument.body ? f.contentDocument.body.innerText : "").join("\n").includes(%q)`, want), false)
	}
	b.screenshot("2b-user-metadata", false)
	b.click("back to the timeline", `//a[normalize-space()="Timeline"]`)

	// 3. The status query, from the Queries tab.
	b.click("open the Queries tab", `//a[@data-testid="queries-tab"]`)
	b.click("open the query types", `//button[@data-testid="query-select-button"]`)
	b.click("choose the status query", fmt.Sprintf(`//ul[@id="query-select-select"]/li[.//span[normalize-space()=%q]]`, workflows.QueryStatus))
	b.waitJS("status is the chosen query", fmt.Sprintf(`[...document.querySelectorAll("#query-select")].some(i => i.value === %q)`, workflows.QueryStatus), false)
	b.click("run the query", `//button[normalize-space()="Run Query"]`)
	if st := b.queryResult(`"grace"`); st.Step != workflows.StepGrace || st.Target != f.target || st.New == nil || st.New.Name != newName {
		b.fail("read the query result", fmt.Errorf("want step grace with new version %s, the UI shows %+v", newName, st))
	}
	b.screenshot("3-status-query", true)

	// 4. approve, through the UI's Send a Signal form.
	const payload = `{"by": "ui-test", "reason": "browser test"}`
	b.click("open More Actions", `//button[@aria-controls="workflow-actions"]`)
	b.click("choose Send a Signal", `//*[@data-testid="signal-button"]`)
	b.click("open the signal names", `//dialog[@open]//button[@data-testid="signal-select-button"]`)
	b.click("choose approve", fmt.Sprintf(`//dialog[@open]//ul[@id="signal-select-select"]/li[.//span[normalize-space()=%q]]`, workflows.SignalApprove))
	b.waitJS("approve is the chosen signal", fmt.Sprintf(
		`[...document.querySelectorAll("dialog[open] #signal-select")].some(i => i.value === %q)`, workflows.SignalApprove), false)
	b.typeJSON("type the signal's input", `//dialog[@open]//div[@role="textbox" and @aria-label="Data"]`, payload)
	b.screenshot("4-approve-signal", false)
	b.click("submit the signal", `//dialog[@open]//button[@data-testid="confirm-modal-button" and not(@disabled)]`)
	b.waitJS("the signal form closes", `!document.querySelector("dialog[open]#signal-confirmation-modal")`, false)
	b.waitJS("the UI confirms the signal", `document.body.innerText.includes("Workflow signaled")`, false)

	// 5. The UI shows the rotation completed, approved by the form's sender.
	b.waitJS("the workflow page shows the rotation completed", jsStatus+` === "completed"`, true)
	b.click("run the query again", `//button[normalize-space()="Refresh Query"]`)
	if st := b.queryResult(`"done"`); st.Step != workflows.StepDone || st.Approved == nil || st.Approved.By != "ui-test" {
		b.fail("read the query result", fmt.Errorf("want step done approved by ui-test, the UI shows %+v", st))
	}
	b.screenshot("5-completed", true)
	b.navigate("open the workflow list again", listURL)
	b.assertListRow(id, map[string]string{"Status": "completed", "RotationStep": string(workflows.StepDone)})
	b.screenshot("6-list-completed", false)

	// The Temporal client and the cluster agree with the UI.
	var done workflows.Status
	if err := devstack.temporal.GetWorkflow(ctx, id, "").Get(ctx, &done); err != nil {
		t.Fatalf("rotation failed: %v", err)
	}
	if done.Step != workflows.StepDone || done.Approved == nil || done.Approved.By != "ui-test" || done.Approved.Reason != "browser test" {
		t.Errorf("result: want done, approved by ui-test for \"browser test\", got %+v", done)
	}
	if _, ok := f.secretData(ctx, f.secret); ok {
		t.Error("the old Secret still exists after the UI's approve")
	}
	newData, ok := f.secretData(ctx, newName)
	if !ok {
		t.Errorf("the new Secret %s is gone", newName)
	}
	assertNoSecretsInHistory(t, ctx, id, oldData["secret"], newData["secret"])
}

// jsStatus is a JavaScript expression for the execution status the visible
// workflow header shows, lower-cased ("running", "completed"...). The UI
// renders the header twice, for wide and narrow screens.
const jsStatus = `([...document.querySelectorAll('[data-testid="execution-status"]')]
	.find(e => e.getBoundingClientRect().width > 0)?.innerText.trim().toLowerCase() ?? "")`

// jsEditorText is a JavaScript function that returns the text of a
// CodeMirror editor (the UI's JSON fields) from its content element. It asks
// the editor for its document because the DOM holds only the lines in view;
// innerText is the fallback should the UI's CodeMirror change its internals.
const jsEditorText = `(e => e.cmTile?.root?.view?.state.doc.toString() ?? e.innerText)`

// The browser's viewport: wide enough for the workflow list with its
// RotationStep column; screenshots of the status query's long result use
// the tall height.
const (
	viewportWidth  = 1600
	viewportHeight = 900
	tallHeight     = 1400
)

// stepTimeout bounds each browser step; the UI answers in well under a
// second, but the test shares two cores with the whole devstack.
const stepTimeout = 45 * time.Second

// browser is a headless chromium tab on the devstack's Web UI. Every step
// is named; a failed step saves a screenshot and the DOM and names the
// folder in the test's error.
type browser struct {
	t         *testing.T
	ctx       context.Context
	ui        string
	namespace string
}

// chromiumPath finds Debian's chromium (or another Chrome) on PATH.
func chromiumPath() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH: install Debian's chromium (`apt-get install --no-install-recommends chromium`; .ci/run does)")
}

// newBrowser starts chromium for the rest of the test. The browser's life
// is bound to ctx; each step runs under its own shorter deadline.
func newBrowser(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	ui := os.Getenv("TEMPORAL_UI")
	if ui == "" {
		t.Fatal("TEMPORAL_UI is not set: load the devstack's environment (`. .devstack/env`)")
	}
	ns := os.Getenv("TEMPORAL_NAMESPACE")
	if ns == "" {
		ns = "default"
	}
	path, err := chromiumPath()
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		// Chromium refuses to start its sandbox as root, which CI runs as.
		chromedp.NoSandbox,
		chromedp.WindowSize(viewportWidth, viewportHeight),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// Start the browser with the test's context: a step's deadline must
	// end the step, not the browser.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(viewportWidth, viewportHeight)); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return &browser{t: t, ctx: bctx, ui: strings.TrimRight(ui, "/"), namespace: ns}
}

// url is a page of the UI in the test's namespace.
func (b *browser) url(page string) string {
	return fmt.Sprintf("%s/namespaces/%s/%s", b.ui, url.PathEscape(b.namespace), page)
}

func (b *browser) navigate(step, u string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		b.fail(step, err)
	}
}

// click clicks, with the mouse, the first element matching xpath that is
// visible, has stopped moving (menus and dialogs animate) and is not
// covered by another element, so that the click lands where a user's would.
func (b *browser) click(step, xpath string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	for {
		if _, err := chromedp.Run(ctx, chromedp.PollFunction[bool](jsMarkClickable,
			chromedp.WithPollingArgs(xpath), chromedp.WithPollingInterval(100*time.Millisecond),
			chromedp.WithPollingTimeout(stepTimeout))); err != nil {
			b.fail(step, fmt.Errorf("no clickable %s: %w", xpath, err))
		}
		// The page may re-render the marked element before the click
		// reaches it; then mark the new one and try again.
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		err := chromedp.Do(cctx, chromedp.Click(chromedp.CSS("[data-e2e-click]")))
		ccancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			b.fail(step, fmt.Errorf("click %s: %w", xpath, err))
		}
	}
}

// jsMarkClickable marks the element click may press: the first match of the
// XPath whose box is non-empty, unchanged since the previous poll, and the
// topmost element at its centre.
const jsMarkClickable = `(xpath) => {
	const r = document.evaluate(xpath, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
	for (let i = 0; i < r.snapshotLength; i++) {
		const e = r.snapshotItem(i), box = e.getBoundingClientRect();
		if (box.width === 0 || box.height === 0 || getComputedStyle(e).visibility === "hidden") continue;
		if (box.top < 0 || box.bottom > innerHeight) { e.scrollIntoView({block: "center"}); return false; }
		const key = [box.x, box.y, box.width, box.height].join();
		const still = e.__e2eBox === key;
		e.__e2eBox = key;
		const top = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
		if (!still || !top || !e.contains(top)) return false;
		document.querySelectorAll("[data-e2e-click]").forEach(o => o.removeAttribute("data-e2e-click"));
		e.setAttribute("data-e2e-click", "");
		return true;
	}
	return false;
}`

// waitVisible waits for an element matching xpath to be shown, reloading
// the page once halfway if reload is set (lists do not refresh by
// themselves and visibility trails the history by a moment).
func (b *browser) waitVisible(step, xpath string, reload bool) {
	b.t.Helper()
	b.waitJS(step, fmt.Sprintf(`(() => {
		const r = document.evaluate(%q, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
		for (let i = 0; i < r.snapshotLength; i++) if (r.snapshotItem(i).getBoundingClientRect().width > 0) return true;
		return false;
	})()`, xpath), reload)
}

// waitJS waits until a JavaScript expression is truthy.
func (b *browser) waitJS(step, expr string, reload bool) {
	b.t.Helper()
	evaluate[bool](b, step, expr, reload)
}

// evaluate polls a JavaScript expression until it is truthy and returns its
// value, or fails the step.
func evaluate[T any](b *browser, step, expr string, reload bool) T {
	b.t.Helper()
	v, err := poll[T](b, expr, reload)
	if err != nil {
		b.fail(step, err)
	}
	return v
}

// poll waits until a JavaScript expression is truthy and returns its value;
// with reload, a page that has not caught up by half the step's time is
// reloaded once (lists do not refresh by themselves).
func poll[T any](b *browser, expr string, reload bool) (T, error) {
	timeout := stepTimeout
	if reload {
		timeout /= 2
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Poll[T](expr,
			chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
		cancel()
		if err == nil || !reload || attempt > 0 {
			return v, err
		}
		ctx, cancel = context.WithTimeout(b.ctx, stepTimeout)
		err = chromedp.Do(ctx, chromedp.Reload())
		cancel()
		if err != nil {
			return v, fmt.Errorf("reload: %w", err)
		}
	}
}

// assertListRow waits until the workflow list's row for the workflow ID
// shows the wanted text (lower-cased) under each column header, reloading
// the page if it lags, or fails with what the row shows.
func (b *browser) assertListRow(id string, want map[string]string) {
	b.t.Helper()
	cols, _ := json.Marshal(want)
	read := fmt.Sprintf(`(() => {
		const heads = [...document.querySelectorAll("table thead th")];
		const row = [...document.querySelectorAll("table tbody tr")]
			.find(r => [...r.querySelectorAll("a")].some(a => a.innerText.trim() === %q));
		const got = {};
		for (const c of Object.keys(%s)) {
			const i = heads.findIndex(h => h.getAttribute("data-testid") === "workflows-summary-table-header-cell-" + c);
			got[c] = row && i >= 0 && row.children[i] ? row.children[i].innerText.trim().toLowerCase() : "(no cell)";
		}
		return got;
	})()`, id, cols)
	match := fmt.Sprintf(`(() => { const got = %s, want = %s; return Object.keys(want).every(c => got[c] === want[c]); })()`, read, cols)
	if _, err := poll[bool](b, match, true); err != nil {
		got, _ := poll[map[string]string](b, read, false)
		b.fail("check the list row", fmt.Errorf("want %v, the row shows %v: %w", want, got, err))
	}
}

// queryResult reads the JSON status in the Queries tab's result once it
// holds the wanted text.
func (b *browser) queryResult(contains string) workflows.Status {
	b.t.Helper()
	text := evaluate[string](b, "read the query result", fmt.Sprintf(`(() => {
		const r = [...document.querySelectorAll('[data-testid="query-result"] [role="textbox"]')]
			.map(%s).find(t => t.includes(%q));
		try { return JSON.parse(r) && r; } catch { return ""; }
	})()`, jsEditorText, contains), false)
	var st workflows.Status
	if err := json.Unmarshal([]byte(text), &st); err != nil {
		b.fail("read the query result", fmt.Errorf("the UI shows no JSON status: %w", err))
	}
	return st
}

// typeJSON types a JSON document into a code editor (CodeMirror, as the
// UI's forms use) and checks that the editor holds it. The text is inserted
// as one input event, as a paste would, so the editor's bracket and quote
// auto-closing does not double any character.
func (b *browser) typeJSON(step, xpath, doc string) {
	b.t.Helper()
	b.click(step, xpath)
	b.waitJS(step+": the editor has the focus", `!!document.activeElement?.closest("[data-e2e-click]")`, false)
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: doc}); err != nil {
		b.fail(step, err)
	}
	b.waitJS(step+": the editor holds the document", fmt.Sprintf(`(() => {
		const text = %s(document.querySelector("[data-e2e-click]"));
		try { return JSON.stringify(JSON.parse(text)) === JSON.stringify(JSON.parse(%q)); } catch { return false; }
	})()`, jsEditorText, doc), false)
	// The editor reformats its JSON on blur and grows, moving the buttons
	// below it: blur now, as a user's click elsewhere would, so that the
	// next click finds them at rest.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`)); err != nil {
		b.fail(step, err)
	}
}

// screenshot saves the viewport as <name>.png under -ui-screenshots, if
// set; tall makes the viewport taller for the picture, for the query's long
// result (the UI scrolls inside its own layout, so a full-page screenshot
// would show no more).
func (b *browser) screenshot(name string, tall bool) {
	b.t.Helper()
	if *uiScreenshots == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if tall {
		// A moment for the page to lay itself out again.
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(viewportWidth, tallHeight), chromedp.Sleep(500*time.Millisecond)); err != nil {
			b.fail("screenshot "+name, err)
		}
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	if tall {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(viewportWidth, viewportHeight)); err != nil {
			b.fail("screenshot "+name, err)
		}
	}
	dir := *uiScreenshots
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir) // go test runs in e2e/
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// fail ends the test at a browser step, after saving what the browser shows
// (screenshot.png, dom.html) to a folder that outlives the test, unlike
// t.TempDir, so the reader of the error can open it.
func (b *browser) fail(step string, err error) {
	b.t.Helper()
	dir, derr := os.MkdirTemp("", "rotator-ui-failure-")
	if derr != nil {
		b.t.Fatalf("%s: %v (and no folder for the page: %v)", step, err, derr)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if png, serr := chromedp.Run(ctx, chromedp.CaptureScreenshot()); serr == nil {
		_ = os.WriteFile(filepath.Join(dir, "screenshot.png"), png, 0o644)
	}
	if html, herr := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); herr == nil {
		_ = os.WriteFile(filepath.Join(dir, "dom.html"), []byte(html), 0o644)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	b.t.Fatalf("UI step %q failed at %s: %v\nscreenshot and DOM: %s", step, loc, err, dir)
}
