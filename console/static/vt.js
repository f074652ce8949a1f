// A terminal screen for the exec terminal (views/podterminal.js): the output of a program that runs
// in a pseudo-terminal, interpreted as xterm would, enough for a shell with line editing and for
// full-screen programs (top, vi, less).
//
// write(text) -> a parser (ground / ESC / CSI / OSC states, kept across calls, so a sequence cut
// between two chunks is fine) -> the grid of cells ([character, style]) with a cursor, a scroll
// region, an alternate screen, SGR colours -> lines leaving the top of the main screen go to
// `scrollback` (onScroll is told) -> html(row) draws one row as escaped text in spans of one style.
// Answers a program asks for (cursor position, device attributes) go to `reply`, which sends them
// to the program's stdin. Pure: no DOM.

const PALETTE = [
  "#3b4252", "#ff7b72", "#7ee787", "#e3b341", "#79c0ff", "#d2a8ff", "#56d4dd", "#d0d7de",
  "#8b949e", "#ffa198", "#aff5b4", "#f8e3a1", "#a5d6ff", "#e2c5ff", "#b3f0ff", "#ffffff",
];
export const FOREGROUND = "#e6e9ef";
export const BACKGROUND = "#11151c";

const blankCell = () => [" ", ""];

export class Screen {
  constructor(cols = 80, rows = 24, { reply = () => {}, onScroll = () => {}, scrollbackLines = 1000 } = {}) {
    this.cols = cols;
    this.rows = rows;
    this.reply = reply;
    this.onScroll = onScroll;
    this.scrollbackLines = scrollbackLines;
    this.scrollback = [];
    this.state = "ground";
    this.params = "";
    this.reset();
  }

  reset() {
    this.grid = this.blankGrid();
    this.x = 0;
    this.y = 0;
    this.wrapPending = false;
    this.top = 0;
    this.bottom = this.rows - 1;
    this.sgr = { fg: null, bg: null, bold: false, underline: false, inverse: false };
    this.style = "";
    this.saved = null;
    this.alternate = null; // the main screen while the alternate one is shown
    this.cursorVisible = true;
  }

  blankLine() { return Array.from({ length: this.cols }, blankCell); }
  blankGrid() { return Array.from({ length: this.rows }, () => this.blankLine()); }
  clampX(x) { return Math.max(0, Math.min(this.cols - 1, x)); }
  clampY(y) { return Math.max(0, Math.min(this.rows - 1, y)); }

  // The text of a row (or of a scrollback line), trailing blanks cut.
  text(line) { return line.map((c) => c[0]).join("").replace(/ +$/, ""); }
  screenText() { return this.grid.map((l) => this.text(l)).join("\n"); }

  resize(cols, rows) {
    cols = Math.max(2, cols);
    rows = Math.max(2, rows);
    const fit = (line) => (line.length >= cols ? line.slice(0, cols) : [...line, ...Array.from({ length: cols - line.length }, blankCell)]);
    this.cols = cols;
    let grid = this.grid.map(fit);
    while (grid.length > rows) {
      // Fewer rows: the top ones go to the scrollback while the cursor stays on the screen.
      if (this.y > 0) {
        const gone = grid.shift();
        if (!this.alternate) this.pushScrollback(gone);
        this.y -= 1;
      } else {
        grid.pop();
      }
    }
    while (grid.length < rows) grid.push(this.blankLine());
    this.grid = grid;
    if (this.alternate) this.alternate.grid = this.alternate.grid.slice(0, rows).map(fit);
    this.rows = rows;
    this.top = 0;
    this.bottom = rows - 1;
    this.x = this.clampX(this.x);
    this.y = this.clampY(this.y);
    this.wrapPending = false;
  }

  pushScrollback(line) {
    this.scrollback.push(line);
    if (this.scrollback.length > this.scrollbackLines) this.scrollback.shift();
    this.onScroll(line);
  }

  write(text) {
    for (const ch of text) {
      switch (this.state) {
        case "ground": this.ground(ch); break;
        case "esc": this.escape(ch); break;
        case "csi": this.csiChar(ch); break;
        case "osc":
          if (ch === "\x07") this.state = "ground";
          else if (ch === "\x1b") this.state = "oscEsc";
          break;
        case "oscEsc": this.state = ch === "\\" ? "ground" : "osc"; break;
        default: this.state = "ground"; // a charset designation's one character
      }
    }
  }

  ground(ch) {
    const code = ch.codePointAt(0);
    if (code >= 0x20 && code !== 0x7f) { this.put(ch); return; }
    switch (ch) {
      case "\x1b": this.state = "esc"; break;
      case "\r": this.x = 0; this.wrapPending = false; break;
      case "\n": case "\x0b": case "\x0c": this.lineFeed(); break;
      case "\b": this.x = Math.max(0, this.x - 1); this.wrapPending = false; break;
      case "\t": this.x = Math.min(this.cols - 1, (Math.floor(this.x / 8) + 1) * 8); break;
      default: break; // BEL and the other controls draw nothing
    }
  }

  escape(ch) {
    this.state = "ground";
    switch (ch) {
      case "[": this.state = "csi"; this.params = ""; break;
      case "]": this.state = "osc"; break;
      case "(": case ")": case "*": case "+": case "#": this.state = "charset"; break;
      case "7": this.saveCursor(); break;
      case "8": this.restoreCursor(); break;
      case "D": this.lineFeed(); break;
      case "E": this.x = 0; this.lineFeed(); break;
      case "M": this.reverseIndex(); break;
      case "c": this.reset(); break;
      default: break;
    }
  }

  csiChar(ch) {
    const code = ch.codePointAt(0);
    if (code >= 0x20 && code <= 0x3f) {
      if (this.params.length < 64) this.params += ch;
      return;
    }
    this.state = "ground";
    if (code >= 0x40 && code <= 0x7e) this.csi(ch, this.params);
  }

  put(ch) {
    if (this.wrapPending) {
      this.x = 0;
      this.lineFeed();
    }
    this.grid[this.y][this.x] = [ch, this.style];
    if (this.x === this.cols - 1) this.wrapPending = true;
    else this.x += 1;
  }

  lineFeed() {
    this.wrapPending = false;
    if (this.y === this.bottom) this.scrollUp(1);
    else if (this.y < this.rows - 1) this.y += 1;
  }

  reverseIndex() {
    this.wrapPending = false;
    if (this.y === this.top) this.scrollDown(1);
    else if (this.y > 0) this.y -= 1;
  }

  scrollUp(n) {
    for (let i = 0; i < n; i += 1) {
      const [gone] = this.grid.splice(this.top, 1);
      if (this.top === 0 && !this.alternate) this.pushScrollback(gone);
      this.grid.splice(this.bottom, 0, this.blankLine());
    }
  }

  scrollDown(n) {
    for (let i = 0; i < n; i += 1) {
      this.grid.splice(this.bottom, 1);
      this.grid.splice(this.top, 0, this.blankLine());
    }
  }

  saveCursor() { this.saved = { x: this.x, y: this.y, sgr: { ...this.sgr } }; }

  restoreCursor() {
    if (!this.saved) return;
    this.x = this.clampX(this.saved.x);
    this.y = this.clampY(this.saved.y);
    this.sgr = { ...this.saved.sgr };
    this.style = styleOf(this.sgr);
    this.wrapPending = false;
  }

  erase(line, from, to) {
    for (let i = Math.max(0, from); i < Math.min(this.cols, to); i += 1) line[i] = [" ", this.bgOnly()];
  }

  // Erased cells keep the current background colour (xterm's "background colour erase").
  bgOnly() { return this.sgr.bg === null ? "" : styleOf({ bg: this.sgr.bg }); }

  csi(final, raw) {
    const priv = /^[?>=]/.test(raw) ? raw[0] : "";
    const ps = (priv ? raw.slice(1) : raw).split(";").map((n) => parseInt(n, 10));
    const n = (i = 0, d = 1) => (Number.isNaN(ps[i]) || ps[i] === undefined || ps[i] === 0 ? d : ps[i]);
    const mode = Number.isNaN(ps[0]) ? 0 : ps[0];
    if (final !== "m") this.wrapPending = false;
    switch (final) {
      case "A": this.y = Math.max(this.y >= this.top ? this.top : 0, this.y - n()); break;
      case "B": this.y = Math.min(this.y <= this.bottom ? this.bottom : this.rows - 1, this.y + n()); break;
      case "C": this.x = this.clampX(this.x + n()); break;
      case "D": this.x = this.clampX(this.x - n()); break;
      case "E": this.y = this.clampY(this.y + n()); this.x = 0; break;
      case "F": this.y = this.clampY(this.y - n()); this.x = 0; break;
      case "G": case "`": this.x = this.clampX(n() - 1); break;
      case "d": this.y = this.clampY(n() - 1); break;
      case "H": case "f": this.y = this.clampY(n(0) - 1); this.x = this.clampX(n(1) - 1); break;
      case "J":
        if (mode === 0) {
          this.erase(this.grid[this.y], this.x, this.cols);
          for (let y = this.y + 1; y < this.rows; y += 1) this.erase(this.grid[y], 0, this.cols);
        } else if (mode === 1) {
          for (let y = 0; y < this.y; y += 1) this.erase(this.grid[y], 0, this.cols);
          this.erase(this.grid[this.y], 0, this.x + 1);
        } else {
          for (let y = 0; y < this.rows; y += 1) this.erase(this.grid[y], 0, this.cols);
        }
        break;
      case "K":
        if (mode === 0) this.erase(this.grid[this.y], this.x, this.cols);
        else if (mode === 1) this.erase(this.grid[this.y], 0, this.x + 1);
        else this.erase(this.grid[this.y], 0, this.cols);
        break;
      case "X": this.erase(this.grid[this.y], this.x, this.x + n()); break;
      case "P": {
        const line = this.grid[this.y];
        line.splice(this.x, Math.min(n(), this.cols - this.x));
        while (line.length < this.cols) line.push([" ", this.bgOnly()]);
        break;
      }
      case "@": {
        const line = this.grid[this.y];
        line.splice(this.x, 0, ...Array.from({ length: Math.min(n(), this.cols - this.x) }, blankCell));
        line.length = this.cols;
        break;
      }
      case "L": case "M":
        if (this.y >= this.top && this.y <= this.bottom) {
          const saveTop = this.top;
          this.top = this.y;
          if (final === "L") this.scrollDown(Math.min(n(), this.bottom - this.y + 1));
          else this.scrollUp(Math.min(n(), this.bottom - this.y + 1));
          this.top = saveTop;
          this.x = 0;
        }
        break;
      case "S": this.scrollUp(n()); break;
      case "T": if (!priv) this.scrollDown(n()); break;
      case "r": {
        const top = n(0) - 1;
        const bottom = (Number.isNaN(ps[1]) || !ps[1] ? this.rows : ps[1]) - 1;
        if (top < bottom && bottom < this.rows) {
          this.top = top;
          this.bottom = bottom;
          this.x = 0;
          this.y = 0;
        }
        break;
      }
      case "s": this.saveCursor(); break;
      case "u": this.restoreCursor(); break;
      case "m": if (!priv) this.setGraphics(raw ? ps : [0]); break;
      case "h": case "l": if (priv === "?") this.setMode(ps, final === "h"); break;
      case "n":
        if (mode === 6) this.reply(`\x1b[${this.y + 1};${this.x + 1}R`);
        else if (mode === 5) this.reply("\x1b[0n");
        break;
      case "c": if (!priv) this.reply("\x1b[?1;2c"); break;
      default: break;
    }
  }

  setMode(modes, on) {
    for (const m of modes) {
      if (m === 25) this.cursorVisible = on;
      else if (m === 1049 || m === 1047 || m === 47) {
        if (on && !this.alternate) {
          if (m === 1049) this.saveCursor();
          this.alternate = { grid: this.grid };
          this.grid = this.blankGrid();
        } else if (!on && this.alternate) {
          this.grid = this.alternate.grid;
          this.alternate = null;
          if (m === 1049) this.restoreCursor();
        }
        this.top = 0;
        this.bottom = this.rows - 1;
      }
    }
  }

  setGraphics(ps) {
    const s = this.sgr;
    for (let i = 0; i < ps.length; i += 1) {
      const p = Number.isNaN(ps[i]) ? 0 : ps[i];
      if (p === 0) Object.assign(s, { fg: null, bg: null, bold: false, underline: false, inverse: false });
      else if (p === 1) s.bold = true;
      else if (p === 22) s.bold = false;
      else if (p === 4) s.underline = true;
      else if (p === 24) s.underline = false;
      else if (p === 7) s.inverse = true;
      else if (p === 27) s.inverse = false;
      else if (p >= 30 && p <= 37) s.fg = p - 30;
      else if (p >= 90 && p <= 97) s.fg = p - 90 + 8;
      else if (p === 39) s.fg = null;
      else if (p >= 40 && p <= 47) s.bg = p - 40;
      else if (p >= 100 && p <= 107) s.bg = p - 100 + 8;
      else if (p === 49) s.bg = null;
      else if (p === 38 || p === 48) {
        // 256 colours (5;n) or true colour (2;r;g;b): the first 16 are the palette's, others a grey.
        const colour = ps[i + 1] === 5 ? colour256(ps[i + 2]) : ps[i + 1] === 2 ? rgb(ps[i + 2], ps[i + 3], ps[i + 4]) : null;
        i += ps[i + 1] === 5 ? 2 : ps[i + 1] === 2 ? 4 : 0;
        if (colour !== null) s[p === 38 ? "fg" : "bg"] = colour;
      }
    }
    this.style = styleOf(s);
  }

  // One row as HTML: runs of one style in spans; the cell at x = `cursor` drawn inverted.
  html(line, cursor = -1) {
    let out = "";
    let run = "";
    let runCss = null;
    const wrap = () => (runCss ? `<span style="${runCss}">${run}</span>` : run);
    line.forEach(([ch, style], x) => {
      const css = cssOf(style, x === cursor);
      if (x > 0 && css !== runCss) { out += wrap(); run = ""; }
      runCss = css;
      run += ch === "<" ? "&lt;" : ch === ">" ? "&gt;" : ch === "&" ? "&amp;" : ch;
    });
    return out + wrap();
  }
}

function colour256(n) {
  if (!(n >= 0 && n < 256)) return null;
  if (n < 16) return n;
  if (n >= 232) { const v = 8 + (n - 232) * 10; return rgb(v, v, v); }
  const i = n - 16;
  const level = (c) => (c ? 55 + c * 40 : 0);
  return rgb(level(Math.floor(i / 36)), level(Math.floor(i / 6) % 6), level(i % 6));
}

function rgb(r, g, b) {
  const ok = (v) => Number.isInteger(v) && v >= 0 && v < 256;
  return ok(r) && ok(g) && ok(b) ? `rgb(${r},${g},${b})` : null;
}

// A cell's style as a compact key: "f<colour>|b<colour>|B|U|I" parts joined by spaces.
function styleOf(s) {
  const parts = [];
  if (s.fg !== null && s.fg !== undefined) parts.push(`f${s.fg}`);
  if (s.bg !== null && s.bg !== undefined) parts.push(`b${s.bg}`);
  if (s.bold) parts.push("B");
  if (s.underline) parts.push("U");
  if (s.inverse) parts.push("I");
  return parts.join(" ");
}

const colourOf = (v) => (/^\d+$/.test(v) ? PALETTE[Number(v)] : v);

// The CSS of a style key; the cursor is drawn inverted.
function cssOf(key, cursor) {
  if (!key && !cursor) return null;
  let fg = FOREGROUND;
  let bg = null;
  const css = [];
  for (const part of key ? key.split(" ") : []) {
    if (part[0] === "f") fg = colourOf(part.slice(1));
    else if (part[0] === "b") bg = colourOf(part.slice(1));
    else if (part === "B") css.push("font-weight:bold");
    else if (part === "U") css.push("text-decoration:underline");
  }
  let inverse = key.split(" ").includes("I");
  if (cursor) inverse = !inverse;
  if (inverse) [fg, bg] = [bg || BACKGROUND, fg];
  if (fg !== FOREGROUND || inverse) css.push(`color:${fg}`);
  if (bg) css.push(`background:${bg}`);
  return css.join(";") || null;
}
