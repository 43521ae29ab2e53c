(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var root = $("otpgate");
  var api = root.getAttribute("data-api-prefix") || "";
  var codeLength = parseInt(root.getAttribute("data-code-length"), 10) || 6;
  var returnTo = safePath(root.getAttribute("data-return-to"));
  var lang = root.getAttribute("data-lang") || document.documentElement.lang || "en";
  var offered = (root.getAttribute("data-channels") || "sms").split(/\s+/);
  var T = readJSON("otpgate-i18n") || {};
  var table = readJSON("otpgate-countries") || { countries: [], codes: [] };

  var phoneStep = $("phone-step"), codeStep = $("code-step");
  var phoneInput = $("phone"), sendBtn = $("send"), verifyBtn = $("verify");
  var resendBtn = $("resend"), changeBtn = $("change-number");
  var errorBox = $("error"), statusBox = $("status");
  var countdownText = $("countdown"), channelsBox = $("channels");
  var countryBtn = $("country"), picker = $("country-picker");
  var search = $("country-search"), list = $("country-list"), noMatch = $("country-empty");
  var boxes = [];
  for (var i = 0; i < codeLength; i++) { boxes.push($("code-" + i)); }

  var phone = "", phoneCountry = null, channel = "sms";
  var busy = false, resendLeft = 0, insecure = false;
  var stopResendTimer = null, otpAbort = null;
  // limit is the rate limit the server last reported, kept apart from the
  // error message so that a later message does not lift it:
  // {phone: the normalised number it applies to, or "" for every number
  // (a per-IP limit); left: seconds; stop: ends its timer; node: its
  // message; n and spoken: the parts of the message that change}.
  var limit = null;

  function readJSON(id) {
    var el = $(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  // t is the catalogue's message key with its {placeholders} filled.
  function t(key, vars) {
    var s = typeof T[key] === "string" ? T[key] : key;
    for (var k in vars || {}) {
      if (Object.prototype.hasOwnProperty.call(vars, k)) { s = s.split("{" + k + "}").join(String(vars[k])); }
    }
    return s;
  }

  // parts splits the message key around {name}, after filling vars, so
  // that an element can stand in for the placeholder.
  function parts(key, name, vars) {
    var s = t(key, vars), at = s.indexOf("{" + name + "}");
    return at < 0 ? [s, ""] : [s.slice(0, at), s.slice(at + name.length + 2)];
  }

  // seconds is a duration in the page's language ("42 seconds", "42s"),
  // with Latin digits as in phone numbers.
  function seconds(n, display) {
    try {
      return new Intl.NumberFormat(lang + "-u-nu-latn", { style: "unit", unit: "second", unitDisplay: display }).format(n);
    } catch (e) {
      return n + " s";
    }
  }

  // The server already sanitised return_to; check again so that a tampered
  // page can never send the browser to another origin.
  function safePath(p) {
    if (typeof p !== "string" || p.charAt(0) !== "/") { return "/"; }
    if (p.charAt(1) === "/" || p.charAt(1) === "\\" || p.indexOf("\\") >= 0) { return "/"; }
    if (/[\u0000-\u001f\u007f]/.test(p)) { return "/"; }
    return p;
  }

  // Countries and numbers. table holds libphonenumber's rules for each
  // region the server allows (see countries.go); the functions below
  // apply them as libphonenumber's parser does.

  var byRegion = {}, byCode = {}, callingCodes = {};
  table.countries.forEach(function (c) {
    byRegion[c.r] = c;
    (byCode[c.c] = byCode[c.c] || []).push(c);
  });
  (table.codes || []).forEach(function (c) { callingCodes[c] = true; });
  var country = byRegion[root.getAttribute("data-country")] || null;

  var regexps = {};
  function rx(src, whole) {
    var key = (whole ? "=" : "^") + src;
    if (!regexps[key]) { regexps[key] = new RegExp(whole ? "^(?:" + src + ")$" : "^(?:" + src + ")"); }
    return regexps[key];
  }
  function matches(src, s) {
    try { return !!src && rx(src, true).test(s); } catch (e) { return false; }
  }
  function startsWith(src, s) {
    try { return !!src && rx(src, false).test(s); } catch (e) { return false; }
  }

  var names = null, englishNames = null;
  try {
    names = new Intl.DisplayNames([lang], { type: "region" });
    englishNames = new Intl.DisplayNames(["en"], { type: "region" });
  } catch (e) { /* names stay region codes */ }
  function countryName(c, n) {
    try { return (n || names).of(c.r) || c.r; } catch (e) { return c.r; }
  }
  function flagOf(c) {
    return String.fromCodePoint(0x1F1E6 + c.r.charCodeAt(0) - 65, 0x1F1E6 + c.r.charCodeAt(1) - 65);
  }

  // asciiDigits turns the digits of Arabic, Persian and Devanagari
  // keyboards (and full-width ones) into ASCII: the API takes ASCII only.
  function asciiDigits(s) {
    return s.replace(/[\u0660-\u0669\u06f0-\u06f9\u0966-\u096f\uff10-\uff19]/g, function (ch) {
      var c = ch.charCodeAt(0);
      var zero = c >= 0xff10 ? 0xff10 : c >= 0x0966 ? 0x0966 : c >= 0x06f0 ? 0x06f0 : 0x0660;
      return String(c - zero);
    }).replace(/\uff0b/g, "+");
  }

  // stripTrunk removes a national (trunk) prefix such as GB's "0" from
  // the national number d, unless that would make a valid number invalid.
  function stripTrunk(c, d) {
    if (!c.npp || !d) { return d; }
    var m = null, re = null;
    try { re = rx(c.npp, false); m = re.exec(d); } catch (e) { return d; }
    if (!m) { return d; }
    var out = !c.npt || m[m.length - 1] === undefined ? d.slice(m[0].length) : d.replace(re, c.npt);
    if (matches(c.nn, d) && !matches(c.nn, out)) { return d; }
    if (c.pl.length && out.length < Math.min.apply(null, c.pl)) { return d; }
    return out;
  }

  function possible(c, nat) { return c.pl.indexOf(nat.length) >= 0 && matches(c.nn, nat); }

  // regionFor picks the offered region of a calling code that a national
  // number belongs to (+1 is the US, Canada and more; +44 the UK and the
  // Channel Islands), preferring the chosen one.
  function regionFor(code, nat, chosen) {
    var cands = byCode[code] || [];
    if (cands.length <= 1) { return cands[0] || null; }
    var fits = function (c) { return c.ld ? startsWith(c.ld, nat) : c.vp ? matches(c.vp, nat) : false; };
    if (chosen && chosen.c === code && fits(chosen)) { return chosen; }
    var main = null;
    for (var k = 0; k < cands.length; k++) {
      if (cands[k].m) { main = cands[k]; continue; }
      if (fits(cands[k])) { return cands[k]; }
    }
    return main || cands[0];
  }

  // parsePhone reads a number as people write it with the country chosen:
  // "07400 123456" in GB, "(201) 555-0123" in the US, "+44 7400 123456"
  // or "0044…" anywhere. It returns {e164, country} or {error}: "empty",
  // "no_country" (a national number and no country chosen), "bad" or
  // "bad_intl".
  function parsePhone(raw, chosen) {
    var s = asciiDigits(String(raw || "")).trim();
    if (!s) { return { error: "empty" }; }
    if (/[^0-9+\s().\-\/\u00a0\u2010-\u2015]/.test(s) || s.lastIndexOf("+") > 0) {
      return { error: s.charAt(0) === "+" || !chosen ? "bad_intl" : "bad" };
    }
    var digits = s.replace(/[^0-9]/g, "");
    var intl = s.charAt(0) === "+";
    if (!intl && chosen && chosen.ip && startsWith(chosen.ip, digits)) {
      digits = digits.replace(rx(chosen.ip, false), "");
      intl = true;
    } else if (!intl && digits.slice(0, 2) === "00") {
      digits = digits.slice(2);
      intl = true;
    }
    var c = chosen, nat;
    if (intl) {
      var code = 0;
      for (var n = 1; n <= 3 && !code; n++) {
        if (callingCodes[digits.slice(0, n)]) { code = +digits.slice(0, n); }
      }
      if (!code) { return { error: "bad_intl" }; }
      nat = digits.slice(String(code).length);
      c = regionFor(code, nat, chosen);
      if (!c) {
        // A region the server does not offer: it will say so.
        return /^[0-9]{4,14}$/.test(nat) && digits.length <= 15 ? { e164: "+" + digits, country: null } : { error: "bad_intl" };
      }
      nat = stripTrunk(c, nat);
    } else {
      if (!c) { return { error: "no_country" }; }
      nat = stripTrunk(c, digits);
      // The calling code typed without its +: "44 7400 123456" in GB.
      var cc = String(c.c);
      if (!possible(c, nat) && digits.indexOf(cc) === 0) {
        var rest = stripTrunk(c, digits.slice(cc.length));
        if (possible(c, rest)) { nat = rest; }
      }
    }
    if (!possible(c, nat) || String(c.c).length + nat.length > 15) {
      return { error: intl ? "bad_intl" : "bad", country: c };
    }
    return { e164: "+" + c.c + nat, country: c };
  }

  // formatPhone writes an E.164 number in the international format of its
  // region: "+44 7400 123456".
  function formatPhone(e164, c) {
    if (!c) { return e164; }
    var cc = String(c.c), nat = e164.slice(1 + cc.length), f = c.f || [];
    for (var k = 0; k < f.length; k++) {
      if (f[k][2] && !startsWith(f[k][2], nat)) { continue; }
      if (!matches(f[k][0], nat)) { continue; }
      try { return "+" + cc + " " + nat.replace(rx(f[k][0], true), f[k][1]); } catch (e) { break; }
    }
    return "+" + cc + " " + nat;
  }

  // For tests and custom templates: the page's reading of numbers, with
  // the chosen country or another offered one.
  window.otpgatePhone = {
    parse: function (raw, region) { return parsePhone(raw, region ? byRegion[region] || null : country); },
    format: function (e164, region) { return formatPhone(e164, byRegion[region] || null); }
  };

  // The country picker: a button that opens a searchable list.

  var pickerItems = null, active = -1, shown = [];

  function fold(s) {
    return String(s).normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function buildPicker() {
    if (pickerItems) { return; }
    pickerItems = table.countries.map(function (c) {
      return { c: c, name: countryName(c), en: countryName(c, englishNames) };
    });
    pickerItems.sort(function (a, b) { return a.name.localeCompare(b.name, lang); });
    pickerItems.forEach(function (it) {
      var li = document.createElement("li");
      li.id = "country-opt-" + it.c.r;
      li.setAttribute("role", "option");
      li.setAttribute("data-region", it.c.r);
      var fl = document.createElement("span");
      fl.className = "flag";
      fl.setAttribute("aria-hidden", "true");
      fl.textContent = flagOf(it.c);
      var nm = document.createElement("span");
      nm.className = "name";
      nm.textContent = it.name;
      var dial = document.createElement("span");
      dial.className = "dial";
      dial.dir = "ltr";
      dial.textContent = "+" + it.c.c;
      li.append(fl, nm, dial);
      li.addEventListener("mousedown", function (e) { e.preventDefault(); });
      li.addEventListener("click", function () { chooseCountry(it.c); });
      it.el = li;
      it.key = fold(it.name + " " + it.en + " " + it.c.r);
      list.append(li);
    });
  }

  function filterPicker() {
    var q = fold(search.value.trim());
    var digits = q.replace(/^\+/, "");
    shown = [];
    pickerItems.forEach(function (it) {
      var ok = !q ||
        (/^[0-9]+$/.test(digits) ? ("+" + it.c.c).indexOf("+" + digits) === 0 : it.key.indexOf(q) >= 0 || fold(it.c.r) === q);
      it.el.hidden = !ok;
      it.el.setAttribute("aria-selected", country && it.c.r === country.r ? "true" : "false");
      if (ok) { shown.push(it); }
    });
    noMatch.hidden = shown.length > 0;
    var sel = -1;
    for (var k = 0; k < shown.length; k++) { if (country && shown[k].c.r === country.r) { sel = k; } }
    setActive(q && shown.length ? 0 : sel);
  }

  function setActive(k) {
    if (active >= 0 && shown[active]) { shown[active].el.classList.remove("active"); }
    active = k;
    if (k >= 0 && shown[k]) {
      shown[k].el.classList.add("active");
      search.setAttribute("aria-activedescendant", shown[k].el.id);
      shown[k].el.scrollIntoView({ block: "nearest" });
    } else {
      search.removeAttribute("aria-activedescendant");
    }
  }

  function openPicker() {
    buildPicker();
    picker.hidden = false;
    countryBtn.setAttribute("aria-expanded", "true");
    search.setAttribute("aria-expanded", "true");
    search.value = "";
    filterPicker();
    search.focus();
  }

  function closePicker(focusButton) {
    if (picker.hidden) { return; }
    picker.hidden = true;
    countryBtn.setAttribute("aria-expanded", "false");
    search.setAttribute("aria-expanded", "false");
    search.removeAttribute("aria-activedescendant");
    if (focusButton) { countryBtn.focus(); }
  }

  function chooseCountry(c) {
    setCountry(c);
    closePicker(false);
    phoneInput.focus();
    phoneChanged();
  }

  // setCountry shows c (or no country) on the button and in the hint.
  function setCountry(c) {
    country = c || null;
    $("country-flag").textContent = country ? flagOf(country) : "";
    $("country-code").textContent = country ? "+" + country.c : t("country_none");
    $("country-name").textContent = country ? t("country_button", { country: countryName(country) }) : t("country_label");
    $("country-name").hidden = !country;
    $("phone-hint").textContent = country && country.ex ? t("phone_hint", { example: country.ex }) : t("phone_hint_intl");
  }

  countryBtn.addEventListener("click", function () {
    if (picker.hidden) { openPicker(); } else { closePicker(true); }
  });
  countryBtn.addEventListener("keydown", function (e) {
    if ((e.key === "ArrowDown" || e.key === "ArrowUp") && picker.hidden) { e.preventDefault(); openPicker(); }
  });
  search.addEventListener("input", filterPicker);
  search.addEventListener("keydown", function (e) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!shown.length) { return; }
      var k = active + (e.key === "ArrowDown" ? 1 : -1);
      setActive(Math.max(0, Math.min(shown.length - 1, k)));
    } else if (e.key === "Home" || e.key === "End") {
      if (!shown.length || search.value) { return; }
      e.preventDefault();
      setActive(e.key === "Home" ? 0 : shown.length - 1);
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (active >= 0 && shown[active]) { chooseCountry(shown[active].c); }
    } else if (e.key === "Escape") {
      e.preventDefault();
      closePicker(true);
    } else if (e.key === "Tab") {
      closePicker(false);
    }
  });
  document.addEventListener("click", function (e) {
    if (!picker.hidden && !picker.contains(e.target) && !countryBtn.contains(e.target)) { closePicker(false); }
  });

  // Messages.

  function countdown(secs, tick, done) {
    var deadline = Date.now() + secs * 1000, id = 0;
    function step() {
      var left = Math.ceil((deadline - Date.now()) / 1000);
      if (left > 0) { tick(left); return; }
      clearInterval(id);
      done();
    }
    id = setInterval(step, 250);
    step();
    return function () { clearInterval(id); };
  }

  // limitedFor tells whether the rate limit still refuses sending to the
  // normalised number p.
  function limitedFor(p) {
    return !!limit && limit.left > 0 && (!limit.phone || limit.phone === p);
  }

  function currentE164() { return parsePhone(phoneInput.value, country).e164 || ""; }
  function sendLimited() { return limitedFor(currentE164()); }
  function resendLimited() { return limitedFor(phone); }

  function updateButtons() {
    sendBtn.disabled = busy || insecure || sendLimited();
    verifyBtn.disabled = busy;
    var wait = busy || resendLeft > 0 || resendLimited();
    resendBtn.disabled = wait;
    channelsBox.querySelectorAll("button").forEach(function (b) { b.disabled = wait; });
    root.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // renderCountdown shows how long Resend stays unavailable: the wait the
  // server asked for after a send, or a rate limit that covers this number.
  function renderCountdown() {
    var wait = resendLeft;
    if (onCodeStep() && resendLimited()) { wait = Math.max(wait, limit.left); }
    var text = onCodeStep() && wait > 0 ? t("resend_in", { time: seconds(wait, "narrow") }) : "";
    if (countdownText.textContent !== text) { countdownText.textContent = text; }
  }

  function setBusy(on) { busy = on; updateButtons(); }

  function setStatus(text) { statusBox.textContent = text; }

  // clearError clears the message only; a rate limit stays in force (see
  // resetLimit).
  function clearError() {
    errorBox.textContent = "";
    updateButtons();
  }

  function showError(text) {
    clearError();
    errorBox.textContent = text;
  }

  function limitShown() { return !!limit && !!limit.node && errorBox.contains(limit.node); }

  // resetLimit forgets the rate limit: after a successful send, on "Use a
  // different number", or when its time is up.
  function resetLimit() {
    if (!limit) { return; }
    if (limit.stop) { limit.stop(); }
    if (limitShown()) { errorBox.textContent = ""; }
    limit = null;
    updateButtons();
    renderCountdown();
  }

  // showLimit puts the rate-limit message in #error. Screen readers hear
  // the sentence once (the sr-only copy); the visible copy counts down,
  // hidden from them.
  function showLimit() {
    limit.spoken.textContent = t(limit.phone ? "rate_spoken_phone" : "rate_spoken", { time: seconds(limit.left, "long") });
    limit.n.textContent = String(limit.left);
    errorBox.textContent = "";
    errorBox.append(limit.node);
  }

  // rateLimited records a rate limit for secs and shows a countdown. p is
  // the normalised number a per-number limit applies to, or "" when the
  // limit covers every number (per IP).
  function rateLimited(secs, p) {
    resetLimit();
    clearError();
    if (!(secs > 0)) {
      errorBox.textContent = t("rate_later");
      return;
    }
    var node = document.createElement("span");
    var spoken = document.createElement("span");
    spoken.className = "sr-only";
    var shownText = document.createElement("span");
    shownText.setAttribute("aria-hidden", "true");
    var n = document.createElement("span");
    n.id = "retry-seconds";
    var around = parts(p ? "rate_shown_phone" : "rate_shown", "s");
    shownText.append(around[0], n, around[1]);
    node.append(spoken, shownText);
    var l = limit = { phone: p || "", left: secs, stop: null, node: node, n: n, spoken: spoken };
    showLimit();
    l.stop = countdown(secs, function (left) {
      l.left = left;
      n.textContent = String(left);
      updateButtons();
      renderCountdown();
    }, function () {
      if (limit !== l) { return; }
      l.stop = null;
      var applied = onCodeStep() ? resendLimited() : sendLimited();
      resetLimit();
      if (!applied) { return; }
      if (onCodeStep()) {
        if (resendLeft === 0) { setStatus(t("status_can_resend")); }
      } else {
        setStatus(t("status_can_retry"));
      }
    });
  }

  function retryAfter(res) {
    var v = (res.headers.get("Retry-After") || "").trim();
    if (/^[0-9]+$/.test(v)) { return parseInt(v, 10); }
    var when = Date.parse(v);
    return isNaN(when) ? 0 : Math.max(0, Math.ceil((when - Date.now()) / 1000));
  }

  // post sends JSON to the API. It resolves to {ok, res} or to an error
  // {ok: false, code, msg, retryAfter}; it never rejects.
  function post(path, body) {
    return fetch(api + path, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (res) {
      if (res.ok) { return { ok: true, res: res }; }
      return res.json().catch(function () { return {}; }).then(function (data) {
        data = data || {};
        var code = data.error_code || (typeof data.code === "string" ? data.code : "") ||
          res.headers.get("x-sb-error-code") || "";
        return {
          ok: false, status: res.status, code: code,
          msg: typeof data.msg === "string" ? data.msg : (typeof data.message === "string" ? data.message : ""),
          retryAfter: retryAfter(res)
        };
      });
    }, function () {
      return { ok: false, network: true, code: "" };
    });
  }

  function readChallenge(res) {
    return res.json().catch(function () { return {}; }).then(function (d) { return d || {}; });
  }

  function onCodeStep() { return !codeStep.hidden; }

  // handleError shows the error r of a request about the normalised
  // number p, in the page's language.
  function handleError(r, p) {
    if (r.network) { showError(t("err_network")); return; }
    switch (r.code) {
      case "otp_expired":
        showError(t("err_wrong_code"));
        break;
      case "over_sms_send_rate_limit":
        // Per number: other numbers can still be sent to.
        rateLimited(r.retryAfter, p);
        break;
      case "over_request_rate_limit":
        // Per IP: nothing can be sent.
        rateLimited(r.retryAfter, "");
        break;
      case "phone_not_allowed":
        showError(t("err_not_allowed"));
        break;
      case "validation_failed":
        showError(onCodeStep() ? t("err_wrong_code") : t("err_bad_intl"));
        break;
      case "sms_send_failed":
      case "provider_timeout":
        showError(t("err_send_failed"));
        break;
      case "phone_opted_out":
        showError(t("err_opted_out"));
        break;
      case "captcha_failed":
        showError(t("err_captcha"));
        break;
      case "store_unavailable":
        showError(t("err_unavailable"));
        break;
      default:
        showError(t("err_generic"));
    }
    if (onCodeStep() && (r.code === "otp_expired" || r.code === "validation_failed")) {
      clearCode();
      boxes.forEach(function (b) { b.setAttribute("aria-invalid", "true"); });
      boxes[0].focus();
    }
  }

  // Phone step.

  // phoneChanged follows the phone field: a pasted or typed +number
  // switches the country, and a per-number rate limit blocks Send only
  // while the field holds that number (its message shows only then).
  function phoneChanged() {
    var v = asciiDigits(phoneInput.value).trim();
    if (v.charAt(0) === "+" || v.replace(/[^0-9+]/g, "").slice(0, 2) === "00") {
      var r = parsePhone(v, country);
      if (r.country && r.country !== country) { setCountry(r.country); }
    }
    updateButtons();
    if (!limit || !limit.phone || onCodeStep()) { return; }
    if (sendLimited()) {
      if (!limitShown() && errorBox.textContent === "") { showLimit(); }
    } else if (limitShown()) {
      errorBox.textContent = "";
    }
  }
  phoneInput.addEventListener("input", phoneChanged);

  function badPhone(r) {
    phoneInput.setAttribute("aria-invalid", "true");
    if (r.error === "no_country") {
      showError(t("err_no_country"));
    } else if (r.error === "bad" && r.country) {
      showError(t("err_bad_phone", { country: countryName(r.country) }));
    } else {
      showError(t("err_bad_intl"));
    }
    phoneInput.focus();
  }

  phoneStep.addEventListener("submit", function (e) {
    e.preventDefault();
    if (busy || insecure) { return; }
    closePicker(false);
    var r = parsePhone(phoneInput.value, country);
    if (!r.e164) {
      badPhone(r);
      return;
    }
    var p = r.e164;
    if (limitedFor(p)) {
      if (!limitShown()) { showLimit(); }
      phoneInput.focus();
      return;
    }
    phoneInput.removeAttribute("aria-invalid");
    clearError();
    setStatus(t("status_sending"));
    setBusy(true);
    post("/otp", { phone: p, language: lang }).then(function (res) {
      setBusy(false);
      setStatus("");
      if (!res.ok) {
        handleError(res, p);
        if (res.code === "phone_not_allowed" || res.code === "validation_failed") {
          phoneInput.setAttribute("aria-invalid", "true");
        }
        phoneInput.focus();
        return;
      }
      return readChallenge(res.res).then(function (d) {
        phone = p;
        phoneCountry = r.country;
        channel = d.channel || "sms";
        resetLimit();
        showCodeStep(d);
      });
    });
  });

  // Code step.

  // renderHint says where the code went: the masked number the server
  // answered with, and how (text message, WhatsApp or a call).
  function renderHint(masked) {
    var key = channel === "whatsapp" ? "code_hint_whatsapp" : channel === "voice" ? "code_hint_voice" : "code_hint";
    var around = parts(key, "phone");
    var strong = document.createElement("strong");
    strong.id = "masked-phone";
    strong.dir = "ltr";
    strong.textContent = masked;
    var hint = $("code-hint-text");
    hint.textContent = "";
    hint.append(around[0], strong, around[1]);
    $("code-length-hint").textContent = t("code_digits", { n: codeLength });
  }

  // renderChannels offers the other channels the server has as the
  // resend action: "Send by WhatsApp instead", "Call me instead".
  function renderChannels() {
    channelsBox.textContent = "";
    offered.forEach(function (ch) {
      if (ch === channel || (ch !== "sms" && ch !== "whatsapp" && ch !== "voice")) { return; }
      var b = document.createElement("button");
      b.type = "button";
      b.className = "link";
      b.id = "resend-" + ch;
      b.setAttribute("aria-describedby", "countdown");
      b.textContent = t("resend_" + ch);
      b.addEventListener("click", function () { resend(ch); });
      channelsBox.append(b);
    });
    updateButtons();
  }

  function showCodeStep(d) {
    var entered = $("entered-phone");
    entered.textContent = "";
    var shownPhone = parts("entered_phone", "phone");
    var bdi = document.createElement("bdi");
    bdi.dir = "ltr";
    bdi.textContent = (phoneCountry ? flagOf(phoneCountry) + " " : "") + formatPhone(phone, phoneCountry);
    entered.append(shownPhone[0], bdi, shownPhone[1]);
    renderHint(d.masked_phone || phone);
    renderChannels();
    phoneStep.hidden = true;
    codeStep.hidden = false;
    clearCode();
    startResendCountdown(d.resend_after);
    boxes[0].focus();
    startWebOTP();
  }

  function leaveCodeStep() {
    stopWebOTP();
    if (stopResendTimer) { stopResendTimer(); stopResendTimer = null; }
    resendLeft = 0;
    countdownText.textContent = "";
  }

  function startResendCountdown(secs) {
    if (stopResendTimer) { stopResendTimer(); stopResendTimer = null; }
    secs = Number(secs) || 0;
    var waited = false;
    stopResendTimer = countdown(secs, function (left) {
      waited = true;
      resendLeft = left;
      renderCountdown();
      updateButtons();
    }, function () {
      stopResendTimer = null;
      resendLeft = 0;
      renderCountdown();
      updateButtons();
      // Tell screen readers (#countdown is not a live region), unless a
      // rate limit still holds Resend back.
      if (waited && !resendLimited()) { setStatus(t("status_can_resend")); }
    });
  }

  // extractCode finds the code in pasted or autofilled text, such as a
  // whole SMS ("Your 23andMe code is 654 321"): the last run of exactly
  // codeLength digits (single spaces or dashes allowed between them) that
  // is not part of a longer run, such as a phone number; failing that,
  // every digit of the text.
  function extractCode(text) {
    text = asciiDigits(String(text || ""));
    var runs = text.match(/[0-9]+(?:[ \u00a0\-][0-9]+)*/g) || [];
    for (var k = runs.length - 1; k >= 0; k--) {
      var d = runs[k].replace(/[^0-9]/g, "");
      if (d.length === codeLength) { return d; }
    }
    runs = text.match(/[0-9]+/g) || [];
    for (k = runs.length - 1; k >= 0; k--) {
      if (runs[k].length === codeLength) { return runs[k]; }
    }
    return text.replace(/[^0-9]/g, "");
  }

  function clearCode() {
    boxes.forEach(function (b) { b.value = ""; b.removeAttribute("aria-invalid"); });
  }

  function code() {
    return boxes.map(function (b) { return b.value; }).join("");
  }

  // fill writes digits into the boxes from index from, and focuses the box
  // after the last one written.
  function fill(digits, from) {
    var j = from;
    for (var k = 0; k < digits.length && j < codeLength; k++, j++) {
      boxes[j].value = digits.charAt(k);
    }
    boxes[Math.min(j, codeLength - 1)].focus();
  }

  function maybeSubmit() {
    var c = code();
    if (c.length === codeLength && /^[0-9]+$/.test(c)) { verify(c); }
  }

  boxes.forEach(function (box, i) {
    box.addEventListener("focus", function () { box.select(); });
    box.addEventListener("input", function (e) {
      box.removeAttribute("aria-invalid");
      var digits = extractCode(box.value);
      var typed = e.inputType === "insertText" && e.data ? asciiDigits(e.data) : "";
      if (/^[0-9]$/.test(typed)) {
        // One typed digit replaces what the box held.
        digits = typed;
      }
      if (digits.length > 1) {
        // Autofill or a paste that bypassed the paste event.
        box.value = "";
        fill(digits, digits.length >= codeLength ? 0 : i);
      } else {
        box.value = digits;
        if (digits && i < codeLength - 1) { boxes[i + 1].focus(); }
      }
      maybeSubmit();
    });
    box.addEventListener("keydown", function (e) {
      if (e.key === "Backspace" && box.value === "" && i > 0) {
        e.preventDefault();
        boxes[i - 1].value = "";
        boxes[i - 1].focus();
      } else if (e.key === "ArrowLeft" && i > 0) {
        e.preventDefault();
        boxes[i - 1].focus();
      } else if (e.key === "ArrowRight" && i < codeLength - 1) {
        e.preventDefault();
        boxes[i + 1].focus();
      }
    });
    box.addEventListener("paste", function (e) {
      var data = e.clipboardData ? e.clipboardData.getData("text") : "";
      var digits = extractCode(data);
      e.preventDefault();
      if (!digits) { return; }
      clearError();
      fill(digits, digits.length >= codeLength ? 0 : i);
      maybeSubmit();
    });
  });

  codeStep.addEventListener("submit", function (e) {
    e.preventDefault();
    var c = code();
    if (c.length !== codeLength) {
      showError(t("err_code_incomplete", { n: codeLength }));
      var empty = boxes.filter(function (b) { return b.value === ""; })[0] || boxes[0];
      empty.focus();
      return;
    }
    verify(c);
  });

  // verifyType is the type of /verify and /resend for a channel: the API
  // knows "sms" (also for calls) and "whatsapp".
  function verifyType(ch) { return ch === "whatsapp" ? "whatsapp" : "sms"; }

  function verify(c) {
    if (busy) { return; }
    clearError();
    setStatus(t("status_checking"));
    setBusy(true);
    post("/verify", { type: verifyType(channel), phone: phone, token: c }).then(function (r) {
      if (r.ok) {
        // The session cookies are set; the body (with its tokens) is not
        // read on purpose. Stay busy so nothing is sent twice.
        leaveCodeStep();
        setStatus(t("status_signed_in"));
        window.location.assign(returnTo);
        return;
      }
      setBusy(false);
      setStatus("");
      handleError(r, phone);
    });
  }

  // resend asks for a new code, by another channel when via is given.
  function resend(via) {
    if (busy || resendLeft > 0 || resendLimited()) { return; }
    clearError();
    setStatus(t("status_sending_again"));
    setBusy(true);
    var body = { type: verifyType(channel), phone: phone, language: lang };
    if (via) { body.channel = via; }
    post("/resend", body).then(function (r) {
      setBusy(false);
      setStatus("");
      if (!r.ok) {
        handleError(r, phone);
        boxes[0].focus();
        return;
      }
      return readChallenge(r.res).then(function (d) {
        channel = d.channel || via || channel;
        var masked = d.masked_phone || $("masked-phone").textContent;
        renderHint(masked);
        renderChannels();
        resetLimit();
        clearCode();
        startResendCountdown(d.resend_after);
        setStatus(t("status_resent", { phone: masked }));
        boxes[0].focus();
        startWebOTP();
      });
    });
  }

  resendBtn.addEventListener("click", function () { resend(""); });

  changeBtn.addEventListener("click", function () {
    leaveCodeStep();
    resetLimit();
    clearError();
    setStatus("");
    clearCode();
    codeStep.hidden = true;
    phoneStep.hidden = false;
    updateButtons();
    phoneInput.focus();
    phoneInput.select();
  });

  // WebOTP: on phones that support it, the browser offers the code of the
  // SMS (when it ends with "@host #code") and the page submits it.
  function startWebOTP() {
    stopWebOTP();
    if (channel !== "sms" || !("OTPCredential" in window) || !navigator.credentials) { return; }
    var ac = new AbortController();
    otpAbort = ac;
    navigator.credentials.get({ otp: { transport: ["sms"] }, signal: ac.signal }).then(function (cred) {
      if (ac.signal.aborted || !cred || !cred.code || !onCodeStep()) { return; }
      clearCode();
      fill(String(cred.code).replace(/[^0-9]/g, ""), 0);
      maybeSubmit();
    }).catch(function () {});
  }

  function stopWebOTP() {
    if (otpAbort) { otpAbort.abort(); otpAbort = null; }
  }

  // Honest failure: over plain http on a host other than localhost the
  // browser drops the Secure session cookies, and every sign-in would
  // land back here. Tell the operator instead of sending codes.
  if (!window.isSecureContext) {
    insecure = true;
    $("insecure-body").textContent = t("insecure_body", { host: location.host });
    $("insecure").hidden = false;
  }

  setCountry(country);
  updateButtons();
  phoneInput.focus();
})();
