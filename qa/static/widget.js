/**
 * <qa-search> — the embeddable search box of the qa service.
 *
 * One tag embeds it:
 *
 *     <script type="module" src="https://qa.example/widget.js"></script>
 *     <qa-search></qa-search>
 *
 * An ES module with no build step and no dependencies. Everything renders in a Shadow DOM,
 * so the page's CSS cannot break it and its CSS cannot leak out; it is themed with CSS
 * custom properties (--qa-accent, --qa-font, ...) and ::part(). See docs/widget.md.
 *
 * Safety: every string from the API (passages, titles, paths, error messages) is untrusted
 * and is only ever put into the page as text nodes (textContent / createTextNode), never
 * parsed as HTML. Nothing in this file uses innerHTML, outerHTML or insertAdjacentHTML.
 * Requests carry cookies only to the page's own origin (credentials "same-origin"): behind a
 * signing-in proxy (QA_AUTH=header, README) the user's session then reaches qa, and no
 * other origin's API ever gets them.
 */

const SCRIPT_URL = new URL(import.meta.url);
/** The folder widget.js was served from: the API lives beside it (works behind a path prefix). */
const DEFAULT_ENDPOINT = new URL("./", SCRIPT_URL).href.replace(/\/+$/, "");

const DEBOUNCE_MS = 250;
const MIN_CHARS = 2;
const EXCERPT_CHARS = 300;
/** Used until the server's own limits (GET /limits) have arrived, or when they cannot. */
const DEFAULT_LIMITS = Object.freeze({ max_k: 50, max_query_chars: 2000, default_k: 5 });
/** endpoint -> Promise of its limits: one request per API, however many boxes use it. */
const LIMITS = new Map();

/** The limits an API states (largest k, longest query); the defaults when it cannot say. */
export function fetchLimits(endpoint) {
  if (!LIMITS.has(endpoint)) {
    const load = fetch(`${endpoint}/limits`, { mode: "cors", credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : null))
      .then((body) => {
        const positive = (n) => Number.isInteger(n) && n > 0;
        if (body && [body.max_k, body.max_query_chars, body.default_k].every(positive)) return body;
        LIMITS.delete(endpoint); // try again with the next box or the next endpoint change
        return DEFAULT_LIMITS;
      })
      .catch(() => {
        LIMITS.delete(endpoint);
        return DEFAULT_LIMITS;
      });
    LIMITS.set(endpoint, load);
  }
  return LIMITS.get(endpoint);
}

/** Endpoints that answered 404 to POST /feedback (a server without it): no feedback UI there. */
const NO_FEEDBACK = new Set();

/**
 * [start, end) of a result's answer span as UTF-16 indexes into its text, or null when the
 * result has none or an invalid one (the span must lie inside the passage [start, end)).
 */
export function answerRange(r) {
  const [a, b, start, end] = [r.answer_start, r.answer_end, r.start, r.end];
  if (![a, b, start, end].every(Number.isInteger) || !(start <= a && a < b && b <= end)) return null;
  const text = String(r.text ?? "");
  return [codePointToIndex(text, a - start), codePointToIndex(text, b - start)];
}

// Every message in both languages, side by side: [bokmål, English].
const MESSAGES = {
  label: ["Søk i dokumentene", "Search the documents"],
  placeholder: ["Søk i dokumentene", "Search the documents"],
  searching: ["Søker…", "Searching…"],
  noResults: ["Ingen treff", "No results"],
  noResultsHint: [
    "Prøv andre ord, eller still spørsmålet på en annen måte.",
    "Try other words, or ask the question another way.",
  ],
  error: ["Noe gikk galt", "Something went wrong"],
  network: ["Fikk ikke kontakt med søketjenesten.", "Could not reach the search service."],
  results: ["Søkeresultater", "Search results"],
  count: [
    (n) => (n === 1 ? "1 treff" : `${n} treff`),
    (n) => (n === 1 ? "1 result" : `${n} results`),
  ],
  lines: [
    (a, b) => (a === b ? `linje ${a}` : `linje ${a}–${b}`),
    (a, b) => (a === b ? `line ${a}` : `lines ${a}–${b}`),
  ],
  pages: [
    (a, b) => (a === b ? `s. ${a}` : `s. ${a}–${b}`),
    (a, b) => (a === b ? `p. ${a}` : `pp. ${a}–${b}`),
  ],
  open: ["Åpne kilden", "Open the source"],
  original: ["Åpne originalen", "Open the original"],
  shortcut: ["Trykk / for å søke", "Press / to search"],
  clear: ["Tøm søket", "Clear the search"],
  source: ["Kilde", "Source"],
  loadingSource: ["Henter kilden…", "Loading the source…"],
  jump: ["Gå til treffet", "Go to the passage"],
  badLink: [
    "Lenken mangler kilde eller har ugyldige posisjoner.",
    "The link lacks a source or has invalid positions.",
  ],
  stale: [
    "Indeksen er oppdatert etter søket, så markeringen kan ha flyttet seg.",
    "The index was updated after the search, so the marked passage may have moved.",
  ],
  answerHint: ["Trolig svaret på spørsmålet", "Likely the answer to the question"],
  helpful: ["Svarte dette på spørsmålet?", "Did this answer the question?"],
  yes: ["Ja, dette svarte på spørsmålet", "Yes, this answered the question"],
  no: ["Nei, dette svarte ikke på spørsmålet", "No, this did not answer the question"],
  noneAnswered: ["Ingen av disse svarte", "None of these answered"],
  thanks: ["Takk!", "Thank you!"],
  thanksLong: ["Takk for tilbakemeldingen!", "Thank you for the feedback!"],
  feedbackStale: [
    "Søket er oppdatert siden du søkte, så tilbakemeldingen ble ikke lagret.",
    "The search has been updated since you searched, so the feedback was not saved.",
  ],
  feedbackFailed: ["Tilbakemeldingen ble ikke sendt.", "The feedback was not sent."],
  chars: [
    (n) => `${n.toLocaleString("nb-NO")} tegn`,
    (n) => `${n.toLocaleString("en-GB")} characters`,
  ],
};
const LABELS = Object.fromEntries(
  ["nb", "en"].map((lang, i) => [
    lang,
    Object.fromEntries(Object.entries(MESSAGES).map(([key, pair]) => [key, pair[i]])),
  ]),
);

// Words too common to be worth highlighting (question words, articles, prepositions...).
const STOPWORDS = new Set(
  (
    "hvem hva hvor hvordan hvorfor hvilke hvilken hvilket når som er var vart har hadde ble blir " +
    "bli og i på til av for med om det den de dei en et ei at kan skal vil ville kunne skulle fra " +
    "ved eller men ikke seg sin sitt sine meg deg oss dem jeg eg du vi me han hun ho der her så " +
    "da enn også mer mest etter før under over mellom hos uten mot alle noe noen hvis " +
    "the a an of to in on at for and or is are was were who whom whose what when where which " +
    "why how did does do done be been being by with from that this these those it its as about " +
    "into than then there their they them his her he she we you i me my our your not no can " +
    "could should would will shall has have had any all"
  ).split(" ")
);

const WORD_RE = /[\p{L}\p{N}]+(?:['’][\p{L}]+)?/gu;
const SUFFIXES = ["ene", "ane", "er", "en", "et", "ar", "a", "e", "s", "ing", "ed"];

/** Highlight terms from a query: lower-cased, stop words dropped, light suffix stripping. */
export function queryTerms(query) {
  const terms = new Set();
  for (const m of String(query).toLowerCase().matchAll(WORD_RE)) {
    const word = m[0];
    if (STOPWORDS.has(word)) continue;
    if (word.length < 2 || (word.length < 3 && !/\p{N}/u.test(word))) continue;
    let stem = word;
    for (const suffix of SUFFIXES) {
      if (stem.endsWith(suffix) && stem.length - suffix.length >= 4) {
        stem = stem.slice(0, -suffix.length);
        break;
      }
    }
    terms.add(stem);
  }
  return [...terms];
}

function matchesTerm(word, terms) {
  const w = word.toLowerCase();
  for (const t of terms) {
    if (w.startsWith(t)) return true;
    if (t.length >= 5 && w.includes(t)) return true; // compounds: "møtet" in "konsultasjonsmøtet"
  }
  return false;
}

/** [start, end) spans of the words in `text` that match one of `terms`. */
export function matchSpans(text, terms) {
  const spans = [];
  if (!terms.length) return spans;
  for (const m of text.matchAll(WORD_RE)) {
    if (matchesTerm(m[0], terms)) spans.push([m.index, m.index + m[0].length]);
  }
  return spans;
}

/** Sorted, non-overlapping copies of [start, end) spans (overlapping or touching ones merged). */
export function mergeSpans(spans) {
  const sorted = spans.filter(([a, b]) => a < b).map(([a, b]) => [a, b]).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const merged = [];
  for (const span of sorted) {
    const last = merged[merged.length - 1];
    if (last && span[0] <= last[1]) last[1] = Math.max(last[1], span[1]);
    else merged.push(span);
  }
  return merged;
}

/**
 * The runs of a text of `length` characters: {from, to, mark, answer}, covering [0, length)
 * in order, where `mark` says the run is a keyword highlight and `answer` that it lies in the
 * answer span. A keyword crossing an edge of the answer is split there, so the answer stays
 * one element with the keyword marks nested inside it.
 */
export function highlightRuns(length, spans, answer = null) {
  const clamp = (n) => Math.max(0, Math.min(length, n));
  const marks = mergeSpans(spans.map(([a, b]) => [clamp(a), clamp(b)]));
  let span = null;
  if (answer && clamp(answer[0]) < clamp(answer[1])) span = [clamp(answer[0]), clamp(answer[1])];
  const cuts = new Set([0, length]);
  for (const [a, b] of span ? [...marks, span] : marks) cuts.add(a).add(b);
  const points = [...cuts].sort((x, y) => x - y);
  const runs = [];
  let k = 0;
  for (let i = 0; i + 1 < points.length; i++) {
    const from = points[i];
    const to = points[i + 1];
    while (k < marks.length && marks[k][1] <= from) k++;
    const mark = k < marks.length && marks[k][0] <= from && to <= marks[k][1];
    const inAnswer = span !== null && span[0] <= from && to <= span[1];
    const last = runs[runs.length - 1];
    if (last && last.mark === mark && last.answer === inAnswer) last.to = to;
    else runs.push({ from, to, mark, answer: inAnswer });
  }
  return runs;
}

const SPACE_RE = /\s/;

/**
 * A short excerpt of a passage: around its answer span when it has one (the whole span, up to
 * `2 * size` characters), otherwise around its densest cluster of keyword matches. The text is
 * cut from the passage as it is (the widget's CSS folds its line breaks into spaces), so a
 * marked answer is exactly the source's characters. `answer` is [start, end) in the passage's
 * UTF-16 indexes. Returns {text, spans, answer} with positions relative to the excerpt.
 */
export function excerpt(passage, terms, size = EXCERPT_CHARS, answer = null) {
  const raw = String(passage);
  const lo = raw.length - raw.trimStart().length;
  const hi = Math.max(lo, raw.trimEnd().length);
  const all = matchSpans(raw, terms);
  let ans = null;
  if (answer) {
    const a = Math.max(lo, answer[0]);
    const b = Math.min(hi, answer[1]);
    if (a < b) ans = [a, b];
  }
  let from = lo;
  let to = hi;
  if (hi - lo > size) {
    if (ans) {
      const length = Math.min(ans[1] - ans[0], 2 * size);
      const room = Math.max(0, size - length);
      from = Math.max(lo, ans[0] - Math.min(room, 60));
      to = Math.min(hi, Math.max(from + size, ans[0] + length));
      from = Math.max(lo, Math.min(from, to - size));
    } else {
      // The window of `size` chars that holds the most matches, starting a little before one.
      let best = -1;
      for (const [s] of all) {
        const start = Math.max(lo, Math.min(s - 60, hi - size));
        const n = all.filter(([a, b]) => a >= start && b <= start + size).length;
        if (n > best) {
          best = n;
          from = start;
        }
      }
      to = Math.min(hi, from + size);
    }
    // Snap to word boundaries, never into the answer.
    if (from > lo && SPACE_RE.test(raw[from - 1]) === false) {
      let i = from;
      while (i < to && !SPACE_RE.test(raw[i])) i++;
      if (i < to && i - from < 30 && (!ans || i <= ans[0])) from = i;
    }
    if (to < hi && !SPACE_RE.test(raw[to])) {
      let i = to;
      while (i > from && !SPACE_RE.test(raw[i - 1])) i--;
      if (to - i < 30 && i > from && (!ans || i >= ans[1])) to = i;
    }
    while (from < to && SPACE_RE.test(raw[from])) from++;
    while (to > from && SPACE_RE.test(raw[to - 1])) to--;
  }
  const prefix = from > lo ? "… " : "";
  const suffix = to < hi ? " …" : "";
  const shift = prefix.length - from;
  const spans = all.filter(([a, b]) => a >= from && b <= to).map(([a, b]) => [a + shift, b + shift]);
  let inside = null;
  if (ans && Math.max(ans[0], from) < Math.min(ans[1], to)) {
    inside = [Math.max(ans[0], from) + shift, Math.min(ans[1], to) + shift];
  }
  return { text: prefix + raw.slice(from, to) + suffix, spans, answer: inside };
}

/**
 * Append `text` to `parent` as text nodes: the keyword spans wrapped in <mark part="mark">,
 * the answer span in one <mark class="answer" part="answer"> (keyword marks nested inside).
 * Never HTML. Returns the answer element, or null.
 */
function appendHighlighted(parent, text, spans, answer = null, answerTitle = "") {
  let answerEl = null;
  for (const run of highlightRuns(text.length, spans, answer)) {
    const piece = text.slice(run.from, run.to);
    const node = run.mark ? h("mark", { part: "mark" }, piece) : document.createTextNode(piece);
    if (!run.answer) {
      parent.append(node);
      continue;
    }
    if (!answerEl) {
      answerEl = h("mark", { class: "answer", part: "answer", title: answerTitle || null });
      parent.append(answerEl);
    }
    answerEl.append(node);
  }
  return answerEl;
}

/** Build an element: h("a", {href, class: "x"}, "text", child). Strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

const ICONS = {
  search:
    "M10.5 3a7.5 7.5 0 0 1 5.96 12.06l4.24 4.24-1.4 1.4-4.24-4.24A7.5 7.5 0 1 1 10.5 3Zm0 2a5.5 5.5 0 1 0 0 11 5.5 5.5 0 0 0 0-11Z",
  clear: "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4L12 13.4 6.4 19 5 17.6 10.6 12 5 6.4Z",
  // Material Icons "thumb_up" (Apache-2.0).
  up: "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z",
};

function svgIcon(kind) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `icon icon-${kind}`);
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", ICONS[kind === "down" ? "up" : kind]);
  // 👎 is 👍 turned over. SVG, not emoji: not every intranet PC has an emoji font.
  if (kind === "down") path.setAttribute("transform", "rotate(180 12 12)");
  svg.append(path);
  return svg;
}

/**
 * A header value for the key: HTTP headers are bytes, and fetch() sends each character as one
 * byte (Latin-1). The server reads the key as UTF-8, so send its UTF-8 bytes.
 */
function keyHeader(key) {
  return String.fromCharCode(...new TextEncoder().encode(String(key)));
}

function fileName(path) {
  const parts = String(path).split("/");
  return parts[parts.length - 1] || String(path);
}

/**
 * The URL of a source (plus `suffix`, e.g. "/original") under `${endpoint}/sources/`, or null
 * for a path with empty, "." or ".." segments, backslashes or control characters: a link
 * must never make the viewer fetch another route of the API with the tab's key.
 */
export function sourceUrl(endpoint, path, suffix = "") {
  const text = String(path ?? "");
  const parts = text.split("/");
  // eslint-disable-next-line no-control-regex
  if (!text || /[\\\u0000-\u001f\u007f]/.test(text) || parts.some((s) => s === "" || s === "." || s === "..")) {
    return null;
  }
  const base = new URL(`${endpoint}/sources/`);
  const url = new URL(base.href + parts.map(encodeURIComponent).join("/") + suffix);
  return url.origin === base.origin && url.pathname.startsWith(base.pathname) ? url : null;
}

/** An attribute's comma-separated list, trimmed, empty entries dropped. */
function attributeList(value) {
  return String(value || "").split(",").map((v) => v.trim()).filter(Boolean);
}

/** [first, last] page of a result, or null where its format has no pages. */
function pageRange(r) {
  const first = Number(r.page_start);
  if (!Number.isInteger(first) || first < 1) return null;
  const last = Number(r.page_end);
  return [first, Number.isInteger(last) && last >= first ? last : first];
}

// The theme both elements share: CSS custom properties a page may set, and a reset of
// everything the page could make them inherit (colour, font, spacing, case...).
const THEME = `
  --_accent: var(--qa-accent, #0b5cad);
  --_bg: var(--qa-bg, #ffffff);
  --_fg: var(--qa-fg, #1b1f24);
  --_muted: var(--qa-muted, #5b6570);
  --_border: var(--qa-border, #c9d1da);
  --_radius: var(--qa-radius, 10px);
  --_mark-bg: var(--qa-mark-bg, #ffe58f);
  --_answer-bg: var(--qa-answer-bg, color-mix(in srgb, var(--_accent) 13%, var(--_bg)));
  --_answer-bar: var(--qa-answer-bar, var(--_accent));
  --_error: var(--qa-error, #b3261e);
  all: initial;
  display: block;
  color: var(--_fg);
  font-family: var(--qa-font, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif);
  font-size: var(--qa-font-size, 16px);
`;

const CSS = `
:host {
  display: block;
  position: relative;
  width: 100%;
  max-width: var(--qa-max-width, 42rem);
  box-sizing: border-box;
}
:host([hidden]) { display: none; }
*, *::before, *::after { box-sizing: border-box; }

/* Reset everything the page could make us inherit (colour, font, spacing, case...). */
.root {
${THEME}
  --_mark-fg: var(--qa-mark-fg, inherit);
  --_active-bg: var(--qa-active-bg, color-mix(in srgb, var(--_accent) 9%, var(--_bg)));
  position: relative;
  line-height: 1.45;
  text-align: start;
  overflow-wrap: anywhere;
  -webkit-text-size-adjust: 100%;
}

.sr-only {
  position: absolute !important;
  width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip-path: inset(50%); white-space: nowrap; border: 0;
}

form { margin: 0; }
.field {
  display: flex;
  align-items: center;
  gap: .5em;
  min-height: 3em;
  padding: 0 .5em 0 .85em;
  background: var(--_bg);
  border: 1.5px solid var(--_border);
  border-radius: var(--_radius);
  box-shadow: 0 1px 2px rgb(0 0 0 / .05);
  transition: border-color .15s, box-shadow .15s;
}
.field:focus-within {
  border-color: var(--_accent);
  box-shadow: 0 0 0 3px color-mix(in srgb, var(--_accent) 25%, transparent);
}
.icon { width: 1.25em; height: 1.25em; flex: none; fill: currentColor; }
.icon-search { color: var(--_muted); }
input {
  all: unset;
  flex: 1 1 auto;
  min-width: 0;
  height: 2.75em;
  color: var(--_fg);
  font: inherit;
}
input::placeholder { color: var(--_muted); opacity: 1; }
input::-webkit-search-cancel-button { display: none; }
button.clear {
  all: unset;
  display: inline-flex; align-items: center; justify-content: center;
  width: 2em; height: 2em; flex: none;
  border-radius: 50%;
  color: var(--_muted);
  cursor: pointer;
}
button.clear:hover { background: color-mix(in srgb, var(--_fg) 8%, transparent); color: var(--_fg); }
button.clear:focus-visible { outline: 2px solid var(--_accent); outline-offset: 1px; }
button.clear[hidden] { display: none; }
kbd {
  flex: none;
  font: .75em/1 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  color: var(--_muted);
  border: 1px solid var(--_border);
  border-bottom-width: 2px;
  border-radius: 4px;
  padding: .25em .45em;
}
kbd[hidden] { display: none; }
.spinner {
  width: 1.1em; height: 1.1em; flex: none;
  border: 2px solid color-mix(in srgb, var(--_accent) 25%, transparent);
  border-top-color: var(--_accent);
  border-radius: 50%;
  animation: spin .7s linear infinite;
}
.spinner[hidden] { display: none; }
@keyframes spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .spinner { animation-duration: 2s; } }

.panel {
  position: var(--qa-panel-position, relative);
  z-index: var(--qa-z-index, 10);
  left: 0; right: 0;
  margin-top: .4em;
  max-height: var(--qa-max-height, min(70vh, 36rem));
  overflow-y: auto;
  overflow-x: hidden;
  overscroll-behavior: contain;
  background: var(--_bg);
  border: 1px solid var(--_border);
  border-radius: var(--_radius);
  box-shadow: 0 8px 24px rgb(0 0 0 / .12);
}
.panel[hidden] { display: none; }
.message {
  margin: 0;
  padding: .9em 1em;
  color: var(--_muted);
}
.message[hidden] { display: none; }
.message strong { display: block; color: var(--_fg); font-weight: 600; }
.message.error strong { color: var(--_error); }
.message.loading { display: flex; align-items: center; gap: .6em; }
.message.loading[hidden] { display: none; }

[role="listbox"] { list-style: none; margin: 0; padding: .25em 0; }
[role="listbox"]:empty { display: none; }
[role="listbox"][aria-busy="true"] { opacity: .55; }
li.result {
  display: block;
  margin: 0;
  padding: 0;
  border-left: 3px solid transparent;
}
li.result + li.result { border-top: 1px solid color-mix(in srgb, var(--_border) 60%, transparent); }
li.result:has(> [aria-selected="true"]) {
  background: var(--_active-bg);
  border-left-color: var(--_accent);
}
[role="option"] {
  display: block;
  margin: 0;
  padding: .75em 1em .8em calc(1em - 3px);
  cursor: pointer;
}
.feedback {
  display: flex;
  flex-wrap: wrap;
  align-items: center;
  gap: .25em .5em;
  margin: -.45em 0 0;
  padding: 0 1em .6em calc(1em - 3px);
  color: var(--_muted);
}
.feedback > * { font-size: .8125em; }
.feedback[hidden] { display: none; }
.feedback.none-row {
  margin: 0;
  padding: .55em 1em .65em;
  border-top: 1px solid color-mix(in srgb, var(--_border) 60%, transparent);
}
button.vote, button.none {
  all: unset;
  display: inline-flex; align-items: center; justify-content: center;
  min-width: 2em; min-height: 2em;
  padding: 0 .35em;
  border: 1px solid var(--_border);
  border-radius: 999px;
  background: var(--_bg);
  color: var(--_fg);
  cursor: pointer;
  line-height: 1;
}
button.none { padding: 0 .8em; }
button.vote .icon { width: 1.05em; height: 1.05em; color: var(--_muted); }
button.vote[aria-pressed="true"] .icon { color: var(--_accent); }
button.vote:hover, button.none:hover { border-color: var(--_accent); }
button.vote:focus-visible, button.none:focus-visible { outline: 2px solid var(--_accent); outline-offset: 1px; }
button.vote[aria-pressed="true"] {
  border-color: var(--_accent);
  background: color-mix(in srgb, var(--_accent) 14%, var(--_bg));
}
button[aria-disabled="true"] { cursor: default; }
button.vote[aria-disabled="true"]:not([aria-pressed="true"]), button.none[aria-disabled="true"] { opacity: .6; }
.feedback .note { color: var(--_fg); }
.feedback .note.quiet { color: var(--_muted); font-style: italic; }
.title {
  display: block;
  margin: 0 0 .2em;
  font-weight: 600;
  font-size: 1em;
  color: var(--_fg);
}
.text {
  display: block;
  margin: 0 0 .35em;
  font-size: .9375em;
  color: var(--_fg);
}
mark {
  all: unset;
  background: var(--_mark-bg);
  color: var(--_mark-fg);
  border-radius: 2px;
  padding: 0 .08em;
  box-decoration-break: clone;
  -webkit-box-decoration-break: clone;
}
/* The answer span: its own tint and a bar at its start, the keyword marks stay inside it. */
mark.answer {
  background: var(--_answer-bg);
  color: var(--_fg);
  border-left: 3px solid var(--_answer-bar);
  border-radius: 0 2px 2px 0;
  padding: .05em .15em .05em .3em;
  box-decoration-break: slice;
  -webkit-box-decoration-break: slice;
}
@media (forced-colors: active) {
  mark.answer { border: 1px solid CanvasText; border-left-width: 3px; }
  button.vote[aria-pressed="true"] { border-width: 2px; }
}
.section {
  display: block;
  margin: -.1em 0 .25em;
  font-size: .8125em;
  color: var(--_muted);
}
a.cite {
  display: inline;
  font-size: .8125em;
  color: var(--_accent);
  text-decoration: none;
  cursor: pointer;
}
a.cite .file, a.cite .lines {
  text-decoration: underline;
  text-decoration-thickness: 1px;
  text-underline-offset: 2px;
}
a.cite:hover .file, a.cite:hover .lines { text-decoration-thickness: 2px; }
a.cite .sep { color: var(--_muted); white-space: pre; }
@media (hover: none) { kbd { display: none; } }
@media (max-width: 30rem) {
  [role="option"] { padding: .65em .75em .7em; }
  .message { padding: .8em .75em; }
}
`;

const SHEETS = new Map();
function styleFor(root, css = CSS) {
  // A constructed stylesheet needs no 'unsafe-inline' in the page's Content-Security-Policy.
  try {
    if (!SHEETS.has(css)) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      SHEETS.set(css, sheet);
    }
    root.adoptedStyleSheets = [SHEETS.get(css)];
  } catch {
    root.append(h("style", {}, css));
  }
}

let instances = 0;

export class QaSearch extends HTMLElement {
  static get observedAttributes() {
    return ["endpoint", "placeholder", "lang", "k", "api-key", "target", "filter-source", "filter-format"];
  }

  constructor() {
    super();
    this._uid = `qa${++instances}`;
    this._results = [];
    this._query = ""; // the query the shown results (or message) belong to
    this._state = "idle"; // idle | loading | results | empty | error
    this._active = -1;
    this._open = false;
    this._timer = 0;
    this._controller = null;
    this._limits = DEFAULT_LIMITS;
    this._resetFeedback();
    this._onDocKey = this._onDocKey.bind(this);
    this._onDocPointer = this._onDocPointer.bind(this);

    const root = this.attachShadow({ mode: "open", delegatesFocus: false });
    styleFor(root);
    this._build(root);
  }

  /** A new list of results: no votes on it yet. */
  _resetFeedback() {
    this._votes = new Map(); // result index -> {vote, status}
    this._noneVote = null;
    this._openedSent = new Set();
  }

  // --- attributes ---------------------------------------------------------------------

  get endpoint() {
    const value = (this.getAttribute("endpoint") || "").trim();
    if (!value) return DEFAULT_ENDPOINT;
    return new URL(value, document.baseURI).href.replace(/\/+$/, "");
  }

  get k() {
    const n = parseInt(this.getAttribute("k") || "", 10);
    return Number.isFinite(n) && n > 0 ? Math.min(n, this._limits.max_k) : this._limits.default_k;
  }

  /** Take this endpoint's limits (the defaults meanwhile): k and the query length. */
  async _loadLimits() {
    const endpoint = this.endpoint;
    const limits = await fetchLimits(endpoint);
    if (endpoint !== this.endpoint) return; // the endpoint changed meanwhile
    this._limits = limits;
    this._input.setAttribute("maxlength", String(limits.max_query_chars));
  }

  get language() {
    return (this.getAttribute("lang") || "").toLowerCase().startsWith("en") ? "en" : "nb";
  }

  get labels() {
    return LABELS[this.language];
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue || !this._input) return;
    if (name === "lang" || name === "placeholder") this._applyLabels();
    if (name === "endpoint") this._loadLimits();
    if (["endpoint", "k", "api-key", "filter-source", "filter-format"].includes(name)) {
      this._query = ""; // results came from elsewhere: search again on the next input
      if (this._input.value.trim().length >= MIN_CHARS) this._schedule(0);
    }
    if (name === "lang" || name === "target") this._render();
  }

  connectedCallback() {
    document.addEventListener("keydown", this._onDocKey);
    document.addEventListener("pointerdown", this._onDocPointer, true);
    this._applyLabels();
    this._loadLimits();
  }

  disconnectedCallback() {
    document.removeEventListener("keydown", this._onDocKey);
    document.removeEventListener("pointerdown", this._onDocPointer, true);
    clearTimeout(this._timer);
    if (this._controller) this._controller.abort();
  }

  // --- DOM ----------------------------------------------------------------------------

  _build(root) {
    const id = (s) => `${this._uid}-${s}`;
    this._label = h("label", { class: "sr-only", for: id("input") });
    this._input = h("input", {
      id: id("input"),
      part: "input",
      type: "search",
      role: "combobox",
      "aria-autocomplete": "list",
      "aria-expanded": "false",
      "aria-controls": id("listbox"),
      autocomplete: "off",
      autocapitalize: "off",
      spellcheck: "false",
      enterkeyhint: "search",
      maxlength: String(DEFAULT_LIMITS.max_query_chars),
    });
    this._spinner = h("span", { class: "spinner", "aria-hidden": "true", hidden: true });
    this._clear = h("button", { type: "button", class: "clear", hidden: true }, svgIcon("clear"));
    this._kbd = h("kbd", { "aria-hidden": "true" }, "/");
    this._form = h(
      "form",
      { role: "search", part: "form", novalidate: true },
      this._label,
      h("div", { class: "field", part: "field" }, svgIcon("search"), this._input, this._spinner, this._clear, this._kbd)
    );
    this._message = h("div", { class: "message", part: "message", hidden: true });
    this._listbox = h("ul", { id: id("listbox"), role: "listbox", part: "listbox" });
    this._noneRow = h("div", { class: "feedback none-row", part: "feedback-none", hidden: true });
    this._panel = h("div", { class: "panel", part: "panel", hidden: true }, this._message, this._listbox, this._noneRow);
    this._live = h("div", { class: "sr-only", role: "status", "aria-live": "polite", "aria-atomic": "true" });
    this._root = h("div", { class: "root", part: "root" }, this._form, this._panel, this._live);
    root.append(this._root);

    this._input.addEventListener("input", () => this._onInput());
    this._input.addEventListener("keydown", (e) => this._onKey(e));
    this._input.addEventListener("focus", () => {
      this._kbd.hidden = true;
      if (this._input.value.trim() && this._state !== "idle" && this._input.value.trim() === this._query) this._setOpen(true);
    });
    this._input.addEventListener("blur", () => {
      this._kbd.hidden = Boolean(this._input.value);
    });
    this._form.addEventListener("submit", (e) => {
      e.preventDefault();
      this._schedule(0);
    });
    this._clear.addEventListener("click", () => {
      this._input.value = "";
      this._onInput();
      this._input.focus();
    });
    // Clicking in the list must not take the focus from the box.
    this._panel.addEventListener("mousedown", (e) => e.preventDefault());
    this._listbox.addEventListener("click", (e) => {
      const option = e.target.closest('[role="option"]');
      if (!option) return;
      const index = Number(option.dataset.index);
      if (e.target.closest("a")) {
        this._setActive(index, false); // the link follows itself
        this._opened(index);
        return;
      }
      this._setActive(index, false);
      this._openActive();
    });
    this._listbox.addEventListener("auxclick", (e) => {
      const option = e.target.closest('[role="option"]');
      if (option && e.button === 1 && e.target.closest("a")) this._opened(Number(option.dataset.index));
    });
    // The vote buttons are reached with Tab from the box; Escape there goes back to the box,
    // and the list closes once the focus has left the widget.
    this._panel.addEventListener("keydown", (e) => {
      if (e.key !== "Escape") return;
      e.preventDefault();
      this._input.focus(); // (focusing the box reopens the list: close it after)
      this._setOpen(false);
    });
    this._root.addEventListener("focusout", (e) => {
      const next = e.relatedTarget;
      if (next instanceof Node && !this.shadowRoot.contains(next) && !this.contains(next)) this._setOpen(false);
    });
    this._listbox.addEventListener("pointermove", (e) => {
      const option = e.target.closest('[role="option"]');
      if (option && Number(option.dataset.index) !== this._active) this._setActive(Number(option.dataset.index), false);
    });
  }

  _applyLabels() {
    const L = this.labels;
    this._root.setAttribute("lang", this.language);
    this._label.textContent = L.label;
    this._input.setAttribute("placeholder", this.getAttribute("placeholder") || L.placeholder);
    this._listbox.setAttribute("aria-label", L.results);
    this._clear.setAttribute("aria-label", L.clear);
    this._clear.setAttribute("title", L.clear);
    this._kbd.setAttribute("title", L.shortcut);
  }

  // --- events -------------------------------------------------------------------------

  _onDocKey(e) {
    if (e.key !== "/" || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.composedPath()[0];
    if (target instanceof Element) {
      if (target.closest("input, textarea, select, [contenteditable]:not([contenteditable='false'])")) return;
      if (target.isContentEditable) return;
    }
    if (!this.isConnected || this.hidden || !this.getClientRects().length) return;
    e.preventDefault(); // also keeps a second widget on the page from taking it
    this._input.focus();
    this._input.select();
  }

  _onDocPointer(e) {
    if (this._open && !e.composedPath().includes(this)) this._setOpen(false);
  }

  _onInput() {
    const q = this._input.value.trim();
    this._clear.hidden = !this._input.value;
    clearTimeout(this._timer);
    if (q.length < MIN_CHARS) {
      this._abort();
      this._query = "";
      this._results = [];
      this._state = "idle";
      this._spinner.hidden = true;
      this._active = -1;
      this._render();
      this._setOpen(false);
      return;
    }
    this._schedule(DEBOUNCE_MS);
  }

  _onKey(e) {
    const n = this._results.length;
    switch (e.key) {
      case "ArrowDown":
      case "ArrowUp": {
        if (e.altKey && e.key === "ArrowDown") {
          if (this._state !== "idle") this._setOpen(true);
          e.preventDefault();
          return;
        }
        if (!n) return;
        e.preventDefault();
        if (!this._open) {
          this._setOpen(true);
          this._setActive(e.key === "ArrowDown" ? 0 : n - 1);
          return;
        }
        const step = e.key === "ArrowDown" ? 1 : -1;
        const next = this._active === -1 ? (step > 0 ? 0 : n - 1) : (this._active + step + n) % n;
        this._setActive(next);
        return;
      }
      case "Enter":
        if (e.isComposing) return;
        if (this._open && this._active >= 0) {
          e.preventDefault();
          this._openActive();
        }
        return; // otherwise the form submits: search now
      case "Escape":
        if (this._open) {
          e.preventDefault();
          this._setOpen(false);
        } else if (this._input.value) {
          e.preventDefault();
          this._input.value = "";
          this._onInput();
        }
        return;
      case "Tab":
        // Forward into the open list's vote buttons; otherwise the list closes.
        if (e.shiftKey || !this._open || !this._feedbackOn()) this._setOpen(false);
        return;
      default:
    }
  }

  // --- searching ----------------------------------------------------------------------

  _schedule(delay) {
    clearTimeout(this._timer);
    // The server counts code points: cut by those, never inside a surrogate pair.
    const query = () => Array.from(this._input.value.trim()).slice(0, this._limits.max_query_chars).join("");
    this._timer = setTimeout(() => this._search(query()), delay);
  }

  _abort() {
    if (this._controller) {
      this._controller.abort();
      this._controller = null;
    }
  }

  async _search(q) {
    if (q.length < MIN_CHARS) return;
    if (q === this._query && (this._state === "results" || this._state === "empty")) {
      this._setOpen(true); // the same question again: keep what we have
      return;
    }
    this._abort(); // a stale request never overwrites a newer one
    const controller = new AbortController();
    this._controller = controller;
    this._state = "loading";
    this._spinner.hidden = false;
    this._render();
    this._setOpen(true);

    const url = new URL(`${this.endpoint}/search`);
    url.searchParams.set("q", q);
    url.searchParams.set("k", String(this.k));
    // Filters (comma-separated attributes): the server ranks only files that match them.
    for (const glob of attributeList(this.getAttribute("filter-source"))) url.searchParams.append("source", glob);
    for (const format of attributeList(this.getAttribute("filter-format"))) url.searchParams.append("format", format);
    const headers = { Accept: "application/json" };
    const key = this.getAttribute("api-key");
    if (key) headers["X-API-Key"] = keyHeader(key);

    let results = null;
    let error = null;
    try {
      const response = await fetch(url, {
        headers,
        signal: controller.signal,
        mode: "cors",
        credentials: "same-origin",
      });
      let body = null;
      try {
        body = await response.json();
      } catch (parseError) {
        if (parseError.name === "AbortError") throw parseError;
      }
      if (!response.ok) {
        const message = body && body.error && typeof body.error.message === "string" ? body.error.message : "";
        error = message || `HTTP ${response.status}`;
      } else if (!body || !Array.isArray(body.results)) {
        error = `HTTP ${response.status}`;
      } else {
        results = body.results;
        this._version = typeof body.index_version === "string" ? body.index_version : "";
      }
    } catch (e) {
      if (e && e.name === "AbortError") return; // superseded
      error = this.labels.network;
    }
    if (controller !== this._controller) return;
    this._controller = null;
    this._spinner.hidden = true;
    this._query = q;
    this._resetFeedback();
    if (error !== null) {
      this._state = "error";
      this._error = error;
      this._results = [];
    } else {
      this._results = results;
      this._state = results.length ? "results" : "empty";
    }
    this._active = -1;
    this._render();
    this._setOpen(true);
    this._announce();
    this.dispatchEvent(
      new CustomEvent("qa-results", {
        detail: { query: q, results: this._results, error: this._state === "error" ? this._error : null },
        bubbles: true,
        composed: true,
      })
    );
  }

  // --- rendering ----------------------------------------------------------------------

  _viewUrl(r) {
    const url = new URL(`${this.endpoint}/view`);
    url.searchParams.set("source", r.source);
    url.searchParams.set("start", String(r.start));
    url.searchParams.set("end", String(r.end));
    if (answerRange(r)) {
      url.searchParams.set("as", String(r.answer_start));
      url.searchParams.set("ae", String(r.answer_end));
    }
    const pages = pageRange(r);
    if (pages) url.searchParams.set("page", String(pages[0]));
    if (this.language === "en") url.searchParams.set("lang", "en");
    if (this._version) url.searchParams.set("v", this._version);
    const key = this.getAttribute("api-key");
    // In the fragment: never sent to a server, read (and wiped) by the view page.
    if (key) url.hash = new URLSearchParams({ key }).toString();
    return url.href;
  }

  _render() {
    const L = this.labels;
    const msg = this._message;
    msg.replaceChildren();
    msg.className = "message";
    msg.hidden = true;
    if (this._state === "loading" && !this._results.length) {
      msg.classList.add("loading");
      msg.append(h("span", { class: "spinner", "aria-hidden": "true" }), h("span", {}, L.searching));
      msg.hidden = false;
    } else if (this._state === "empty") {
      msg.append(h("strong", {}, L.noResults), h("span", {}, L.noResultsHint));
      msg.hidden = false;
    } else if (this._state === "error") {
      msg.classList.add("error");
      msg.append(h("strong", {}, L.error), h("span", { class: "detail" }, String(this._error)));
      msg.hidden = false;
    }

    const terms = queryTerms(this._query);
    const id = (s) => `${this._uid}-${s}`;
    const target = this.getAttribute("target") || "_blank";
    const options = this._results.map((r, i) => {
      const source = String(r.source ?? "");
      const title = String(r.title || "").trim() || fileName(source);
      const section = String(r.section || "").trim();
      const pages = pageRange(r);
      const { text, spans, answer } = excerpt(String(r.text ?? ""), terms, EXCERPT_CHARS, answerRange(r));
      const p = h("span", { class: "text", part: "text" });
      appendHighlighted(p, text, spans, answer, L.answerHint);
      const href = this._viewUrl(r);
      const cite = h(
        "a",
        {
          class: "cite",
          part: "citation",
          href,
          target,
          rel: target === "_self" ? null : "noopener noreferrer",
          tabindex: "-1",
          title: `${L.open}: ${source}`,
        },
        h("span", { class: "file" }, fileName(source)),
        // "rapport.pdf, s. 3" where the format has pages, "notat.txt · linje 4" where not
        h("span", { class: "sep", "aria-hidden": pages ? null : "true" }, pages ? ", " : " · "),
        h("span", { class: "lines" }, pages ? L.pages(...pages) : L.lines(Number(r.line_start), Number(r.line_end)))
      );
      const option = h(
        "div",
        {
          id: id(`opt-${i}`),
          role: "option",
          part: "option",
          "aria-selected": "false",
          "data-index": i,
          "data-source": source,
          "data-start": r.start,
          "data-end": r.end,
        },
        h("span", { class: "title", part: "title" }, title),
        section ? h("span", { class: "section", part: "section" }, section) : null,
        p,
        cite
      );
      // The votes sit beside the option, not in it: an option's content is presentational.
      return h("li", { class: "result", role: "none", part: "result" }, option, this._feedbackRow(i));
    });
    this._listbox.replaceChildren(...options);
    this._listbox.setAttribute("aria-busy", this._state === "loading" ? "true" : "false");
    this._noneRow.replaceChildren();
    this._noneRow.hidden = !this._feedbackOn();
    if (!this._noneRow.hidden) {
      const none = h("button", { type: "button", class: "none", "data-vote": "none" }, L.noneAnswered);
      none.addEventListener("click", () => this._voteNone());
      this._noneRow.append(none, h("span", { class: "note", part: "feedback-note" }));
      this._paintNone();
    }
    this._setActive(this._active, false);
  }

  // --- feedback -----------------------------------------------------------------------

  /** Feedback is asked for on a list of results, unless the server has no /feedback (404). */
  _feedbackOn() {
    return this._state === "results" && !NO_FEEDBACK.has(this.endpoint);
  }

  /** "Svarte dette på spørsmålet? 👍 👎" under result `i`, or null when feedback is off. */
  _feedbackRow(i) {
    if (!this._feedbackOn()) return null;
    const L = this.labels;
    const ask = `${this._uid}-ask-${i}`;
    const button = (vote, label) => {
      const b = h("button", { type: "button", class: "vote", "data-vote": vote, "aria-label": label, title: label }, svgIcon(vote));
      b.addEventListener("click", () => this._vote(i, vote));
      return b;
    };
    const row = h(
      "div",
      { class: "feedback", part: "feedback", role: "group", "aria-labelledby": ask, "data-index": i },
      h("span", { id: ask, class: "ask" }, L.helpful),
      button("up", L.yes),
      button("down", L.no),
      h("span", { class: "note", part: "feedback-note" })
    );
    this._paintRow(row, this._votes.get(i));
    return row;
  }

  /** Show a vote's state: the chosen button pressed, the pair locked, a short note. */
  _paintRow(row, state) {
    const L = this.labels;
    const locked = Boolean(state) && state.status !== "failed";
    for (const b of row.querySelectorAll("button")) {
      const pressed = Boolean(state) && state.vote === b.dataset.vote && state.status !== "failed";
      if (b.dataset.vote !== "none") b.setAttribute("aria-pressed", pressed ? "true" : "false");
      b.setAttribute("aria-disabled", locked ? "true" : "false");
    }
    const note = row.querySelector(".note");
    const text = state ? { done: L.thanks, stale: L.feedbackStale, failed: L.feedbackFailed }[state.status] : "";
    note.textContent = text || "";
    note.classList.toggle("quiet", Boolean(state) && state.status !== "done");
  }

  _paintNone() {
    if (!this._noneRow.hidden) this._paintRow(this._noneRow, this._noneVote);
  }

  async _vote(i, vote) {
    const r = this._results[i];
    const state = this._votes.get(i);
    if (!r || (state && state.status !== "failed")) return; // one vote per result
    const results = this._results;
    const paint = () => {
      const row = this._listbox.querySelector(`.feedback[data-index="${i}"]`);
      if (row) this._paintRow(row, this._votes.get(i));
    };
    this._votes.set(i, { vote, status: "sending" });
    paint();
    const status = await this._sendFeedback({
      query: this._query,
      index_version: this._version || "",
      source: r.source,
      start: r.start,
      end: r.end,
      vote,
    });
    if (results !== this._results) return; // a newer search replaced the list meanwhile
    this._afterVote(status, () => {
      this._votes.set(i, { vote, status });
      paint();
    });
  }

  /** "Ingen av disse svarte": none of the results answered the question. */
  async _voteNone() {
    if (this._noneVote && this._noneVote.status !== "failed") return;
    const results = this._results;
    this._noneVote = { vote: "none", status: "sending" };
    this._paintNone();
    const status = await this._sendFeedback({ query: this._query, index_version: this._version || "", vote: "none" });
    if (results !== this._results) return;
    this._afterVote(status, () => {
      this._noneVote = { vote: "none", status };
      this._paintNone();
    });
  }

  _afterVote(status, paint) {
    if (status === "missing") {
      // A server without /feedback: the buttons go, quietly, and the focus stays in the box.
      const inside = this.shadowRoot.activeElement && this._panel.contains(this.shadowRoot.activeElement);
      this._render();
      if (inside) this._input.focus();
      return;
    }
    paint();
    const L = this.labels;
    this._say({ done: L.thanksLong, stale: L.feedbackStale, failed: L.feedbackFailed }[status] || "");
  }

  /** A citation of result `i` was opened: tell the server once per result and list. */
  _opened(i) {
    const r = this._results[i];
    if (!r || !this._feedbackOn() || this._openedSent.has(i)) return;
    this._openedSent.add(i);
    const payload = { query: this._query, index_version: this._version || "", source: r.source, start: r.start, end: r.end };
    this._sendFeedback({ ...payload, vote: "opened" });
  }

  /**
   * POST /feedback with the search's credentials. keepalive: the request outlives a page the
   * citation navigates away from. "done", "stale" (409: the index changed since the search),
   * "missing" (404: a server without feedback; remembered per endpoint) or "failed".
   */
  async _sendFeedback(payload) {
    const endpoint = this.endpoint;
    const headers = { Accept: "application/json", "Content-Type": "application/json" };
    const key = this.getAttribute("api-key");
    if (key) headers["X-API-Key"] = keyHeader(key);
    try {
      const response = await fetch(`${endpoint}/feedback`, {
        method: "POST",
        headers,
        body: JSON.stringify(payload),
        mode: "cors",
        credentials: "same-origin",
        keepalive: true,
      });
      if (response.ok) return "done";
      if (response.status === 404 || response.status === 405) {
        NO_FEEDBACK.add(endpoint);
        return "missing";
      }
      return response.status === 409 ? "stale" : "failed";
    } catch {
      return "failed";
    }
  }

  _announce() {
    const L = this.labels;
    let text = "";
    if (this._state === "results") text = L.count(this._results.length);
    else if (this._state === "empty") text = L.noResults;
    else if (this._state === "error") text = `${L.error}: ${this._error}`;
    this._say(text);
  }

  /** Say `text` in the live region; cleared first so the same message twice is said twice. */
  _say(text) {
    this._live.textContent = "";
    setTimeout(() => {
      this._live.textContent = text;
    }, 50);
  }

  _setOpen(open) {
    const hasContent = this._state !== "idle";
    open = Boolean(open && hasContent);
    this._open = open;
    this._panel.hidden = !open;
    this._input.setAttribute("aria-expanded", open ? "true" : "false");
    if (!open) this._setActive(-1, false);
  }

  _setActive(index, scroll = true) {
    const options = this._options();
    if (index >= options.length) index = -1;
    this._active = index;
    for (let i = 0; i < options.length; i++) {
      options[i].setAttribute("aria-selected", i === index ? "true" : "false");
    }
    if (index >= 0) {
      const option = options[index];
      this._input.setAttribute("aria-activedescendant", option.id);
      if (scroll) option.scrollIntoView({ block: "nearest" });
    } else {
      this._input.removeAttribute("aria-activedescendant");
    }
  }

  _openActive() {
    const option = this._options()[this._active];
    const link = option && option.querySelector("a.cite");
    if (link) link.click();
  }

  _options() {
    return this._listbox.querySelectorAll('[role="option"]');
  }
}

/** Python counts characters in code points, JavaScript in UTF-16 units: convert an offset. */
export function codePointToIndex(text, offset) {
  if (!/[\uD800-\uDFFF]/.test(text)) return Math.min(offset, text.length);
  let i = 0;
  for (let n = 0; n < offset && i < text.length; n++) {
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
  }
  return i;
}

const SOURCE_CSS = `
:host { display: block; }
*, *::before, *::after { box-sizing: border-box; }
.root {
${THEME}
  background: var(--_bg);
  line-height: 1.5;
  overflow-wrap: anywhere;
}
header { padding: 0 0 1em; border-bottom: 1px solid var(--_border); margin-bottom: 1.25em; }
.kicker {
  margin: 0 0 .25em; color: var(--_muted);
  font-size: .8125em; font-weight: 600; letter-spacing: .06em; text-transform: uppercase;
}
h1 { margin: 0 0 .35em; font-size: 1.5em; line-height: 1.25; font-weight: 650; }
.meta {
  display: flex; flex-wrap: wrap; align-items: center; gap: .35em .9em;
  margin: 0; color: var(--_muted); font-size: .875em;
}
.meta .error-inline { color: var(--_error); }
.meta a.original { color: var(--_accent); font-weight: 600; text-underline-offset: 2px; }
.meta .path { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--_fg); }
button {
  all: unset;
  cursor: pointer;
  color: var(--_accent);
  font-weight: 600;
  text-decoration: underline;
  text-underline-offset: 2px;
}
button:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; border-radius: 2px; }
.notice, .error, .loading {
  margin: 1em 0 0; padding: .75em 1em;
  border-radius: var(--_radius);
  border: 1px solid var(--_border);
}
.notice { background: #fff8e1; border-color: #f0d58a; }
.error { color: var(--_error); border-color: currentColor; background: color-mix(in srgb, var(--_error) 6%, var(--_bg)); }
.error strong { display: block; }
.error span { color: var(--_fg); }
.loading { color: var(--_muted); border-style: dashed; }
[hidden] { display: none !important; }
pre {
  margin: 0;
  padding: 0;
  white-space: pre-wrap;
  overflow-wrap: anywhere;
  font: inherit;
  font-size: 1em;
  line-height: 1.65;
  tab-size: 4;
}
mark {
  all: unset;
  background: var(--_mark-bg);
  color: inherit;
  border-radius: 2px;
  box-shadow: 0 0 0 2px var(--_mark-bg);
  scroll-margin: 30vh 0;
}
mark:focus { outline: none; }
mark.answer {
  background: var(--_answer-bg);
  box-shadow: none;
  border-left: 3px solid var(--_answer-bar);
  padding-left: .2em;
}
@media (forced-colors: active) { mark.answer { border: 1px solid CanvasText; border-left-width: 3px; } }
`;

/**
 * <qa-source>: shows one source text as plain text with a passage marked and scrolled into
 * view. It powers /view (reading ?source=&start=&end=&as=&ae=&lang=&v= from the page URL when it has
 * no `source` attribute) and can be embedded like <qa-search>.
 */
export class QaSource extends HTMLElement {
  static get observedAttributes() {
    return ["source", "start", "end", "answer-start", "answer-end", "page", "endpoint", "lang", "api-key"];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    styleFor(root, SOURCE_CSS);
    this._root = h("div", { class: "root", part: "root" });
    root.append(this._root);
    this._controller = null;
  }

  connectedCallback() {
    this._load();
  }

  disconnectedCallback() {
    if (this._controller) this._controller.abort();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue !== newValue && this.isConnected) this._load();
  }

  _params() {
    if (this.hasAttribute("source")) {
      return {
        source: this.getAttribute("source"),
        start: this.getAttribute("start"),
        end: this.getAttribute("end"),
        answerStart: this.getAttribute("answer-start"),
        answerEnd: this.getAttribute("answer-end"),
        page: this.getAttribute("page"),
        lang: this.getAttribute("lang") || "",
        version: this.getAttribute("version") || "",
        key: this.getAttribute("api-key") || "",
        fromUrl: false,
      };
    }
    const q = new URLSearchParams(location.search);
    const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
    const key = hash.get("key") || "";
    if (!this._key) {
      try {
        this._key = sessionStorage.getItem("qa-api-key") || "";
      } catch {
        this._key = "";
      }
    }
    if (key) {
      // A link's key is taken only when this tab has none: a crafted link must not swap the
      // stored key for its own. Either way it leaves the address bar and the history.
      if (!this._key) {
        this._key = key;
        try {
          sessionStorage.setItem("qa-api-key", key);
        } catch {
          /* storage may be off: the key then lasts as long as the page */
        }
      }
      history.replaceState(history.state, "", location.pathname + location.search);
    }
    return {
      source: q.get("source"),
      start: q.get("start"),
      end: q.get("end"),
      answerStart: q.get("as"),
      answerEnd: q.get("ae"),
      page: q.get("page"),
      lang: this.getAttribute("lang") || q.get("lang") || "",
      version: q.get("v") || "",
      key: this._key || this.getAttribute("api-key") || "",
      fromUrl: true,
    };
  }

  get endpoint() {
    const value = (this.getAttribute("endpoint") || "").trim();
    if (!value) return DEFAULT_ENDPOINT;
    return new URL(value, document.baseURI).href.replace(/\/+$/, "");
  }

  async _load() {
    const p = this._params();
    const language = String(p.lang).toLowerCase().startsWith("en") ? "en" : "nb";
    const L = LABELS[language];
    this._root.setAttribute("lang", language);
    if (p.fromUrl) document.documentElement.lang = language;
    if (this._controller) this._controller.abort();
    const controller = new AbortController();
    this._controller = controller;

    const toInt = (v) => (v !== null && v !== "" && /^\d+$/.test(String(v)) ? parseInt(v, 10) : null);
    const start = toInt(p.start);
    const end = toInt(p.end);
    const url = sourceUrl(this.endpoint, p.source);
    if (!url) {
      this._showError(L, L.badLink, null); // no source, or one that is not a plain path
      return;
    }
    this._root.replaceChildren(h("p", { class: "loading", role: "status" }, L.loadingSource));

    url.searchParams.set("format", "json");
    const headers = { Accept: "application/json" };
    if (p.key) headers["X-API-Key"] = keyHeader(p.key);
    let body = null;
    let error = null;
    try {
      const response = await fetch(url, { headers, signal: controller.signal, credentials: "same-origin" });
      try {
        body = await response.json();
      } catch (parseError) {
        if (parseError.name === "AbortError") throw parseError;
      }
      if (!response.ok || !body || typeof body.text !== "string") {
        const message = body && body.error && typeof body.error.message === "string" ? body.error.message : "";
        error = message || `HTTP ${response.status}`;
      }
    } catch (e) {
      if (e && e.name === "AbortError") return;
      error = L.network;
    }
    if (controller !== this._controller) return;
    this._controller = null;
    if (error !== null) {
      this._showError(L, error, p);
      return;
    }
    this._render(L, p, body, start, end);
  }

  _showError(L, message, p) {
    const box = h("div", { class: "error", role: "alert" }, h("strong", {}, L.error), h("span", {}, String(message)));
    const children = [box];
    if (p && p.source) {
      children.unshift(
        h("header", {}, h("p", { class: "kicker" }, L.source), h("h1", {}, fileName(p.source)))
      );
    }
    this._root.replaceChildren(...children);
    if (p && p.fromUrl) document.title = `${L.error} – ${L.source}`;
  }

  _render(L, p, body, start, end) {
    const text = body.text;
    const path = typeof body.path === "string" ? body.path : p.source;
    const title = (typeof body.title === "string" && body.title.trim()) || fileName(path);
    const cpLength = [...text].length;
    const valid = start !== null && end !== null && start <= end && end <= cpLength;

    const pre = h("pre", { class: "text", part: "text", tabindex: "0" });
    let mark = null;
    let answer = null;
    const meta = h("p", { class: "meta" }, h("span", { class: "path" }, path));
    if (valid) {
      const a = codePointToIndex(text, start);
      const b = codePointToIndex(text, end);
      mark = h("mark", { id: "passage", part: "passage", tabindex: "-1" });
      // The answer span (as/ae): marked inside the passage only when it lies inside it.
      const toInt = (v) => (v !== null && v !== undefined && /^\d+$/.test(String(v)) ? parseInt(v, 10) : null);
      const [as, ae] = [toInt(p.answerStart), toInt(p.answerEnd)];
      if (as !== null && ae !== null && start <= as && as < ae && ae <= end) {
        const x = codePointToIndex(text, as);
        const y = codePointToIndex(text, ae);
        answer = h("mark", { id: "answer", class: "answer", part: "answer", title: L.answerHint }, text.slice(x, y));
        mark.append(document.createTextNode(text.slice(a, x)), answer, document.createTextNode(text.slice(y, b)));
      } else {
        mark.textContent = text.slice(a, b);
      }
      pre.append(document.createTextNode(text.slice(0, a)), mark, document.createTextNode(text.slice(b)));
      const lineStart = text.slice(0, a).split("\n").length;
      const lineEnd = lineStart + (text.slice(a, b).replace(/\n+$/, "").split("\n").length - 1);
      const jump = h("button", { type: "button", class: "jump" }, L.jump);
      jump.addEventListener("click", () => this._reveal(mark, "smooth", answer));
      meta.append(h("span", { class: "lines" }, L.lines(lineStart, lineEnd)), jump);
    } else {
      pre.textContent = text;
      meta.append(h("span", {}, L.chars(cpLength)));
    }
    meta.append(this._originalLink(L, p, path, body.format));
    const header = h(
      "header",
      { part: "header" },
      h("p", { class: "kicker" }, L.source),
      h("h1", { part: "title" }, title),
      meta
    );
    if (start !== null || end !== null || p.start || p.end) {
      if (!valid) header.append(h("p", { class: "notice", role: "note" }, L.badLink));
    }
    if (valid && p.version && body.index_version && p.version !== body.index_version) {
      header.append(h("p", { class: "notice", role: "note" }, L.stale));
    }
    this._root.replaceChildren(header, pre);
    if (p.fromUrl) document.title = `${title} – ${L.source}`;
    if (mark) requestAnimationFrame(() => this._reveal(mark, "auto", answer));
    this.dispatchEvent(new CustomEvent("qa-source-loaded", { detail: { path, start, end }, bubbles: true, composed: true }));
  }

  /**
   * "Åpne originalen": the indexed file itself, a PDF at the passage's page (#page=N). With
   * an API key a link cannot carry the header, so the file is fetched and handed over as a
   * blob: a PDF opens in the browser's viewer, anything else is only ever downloaded (a blob
   * shares this page's origin, so it must never be rendered as a document here).
   */
  _originalLink(L, p, path, format) {
    const pdf = format === "pdf";
    const page = /^\d+$/.test(String(p.page ?? "")) ? parseInt(p.page, 10) : 0;
    const fragment = pdf && page > 0 ? `#page=${page}` : "";
    const target = sourceUrl(this.endpoint, path, "/original");
    if (!target) return document.createTextNode("");
    const url = target.href;
    const link = h("a", { class: "original", part: "original", href: url + fragment, target: "_blank", rel: "noopener noreferrer" }, L.original);
    if (!p.key) return link;
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      try {
        const response = await fetch(url, { headers: { "X-API-Key": keyHeader(p.key) }, credentials: "same-origin" });
        if (!response.ok) {
          const body = await response.json().catch(() => null);
          const message = body && body.error && body.error.message;
          throw new Error(typeof message === "string" ? message : `HTTP ${response.status}`);
        }
        const bytes = await response.blob();
        const blob = new Blob([bytes], { type: pdf ? "application/pdf" : "application/octet-stream" });
        const href = URL.createObjectURL(blob);
        setTimeout(() => URL.revokeObjectURL(href), 60_000);
        if (pdf) {
          window.open(href + fragment, "_blank", "noopener");
        } else {
          const save = h("a", { href, download: fileName(path) });
          save.click();
        }
      } catch (e) {
        const why = e instanceof TypeError ? L.network : String(e.message);
        link.replaceWith(h("span", { class: "error-inline", role: "alert" }, `${L.error}: ${why}`));
      }
    });
    return link;
  }

  /** Scroll the answer (else the passage) to the middle of the view; focus the passage. */
  _reveal(mark, behavior, answer = null) {
    (answer || mark).scrollIntoView({ block: "center", behavior });
    mark.focus({ preventScroll: true });
  }
}

if (!customElements.get("qa-search")) customElements.define("qa-search", QaSearch);
if (!customElements.get("qa-source")) customElements.define("qa-source", QaSource);
