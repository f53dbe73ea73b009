// The curation dialog: commit and reveal from the browser, no build step.
//
// The commitment is computed here with Web Crypto, byte for byte as curation/commitment.py
// does (spec §2): SHA-256 over length-framed fields (4-byte big-endian length, then the bytes):
// "curation-market/v1", the chain id (ASCII hex), author, permlink, predictor (UTF-8 exactly
// as typed: no Unicode normalisation, as Python's str.encode), the prediction in milli-units
// (ASCII decimal), the 32 salt bytes, then for staked rule sets "stake:<milli>" and
// "bid:<thousandths>". The salt comes from crypto.getRandomValues and is written to
// localStorage BEFORE anything is broadcast, so a crash or a closed tab never loses a commit's
// only key; it is kept until the market's reveal window has passed (chain time).
//
// Signing: Hive Keychain (window.hive_keychain; Steem Keychain, window.steem_keychain, on
// Steem) with the posting key when present; otherwise dhive (static/vendor, pinned, loaded only
// then) with a posting key held in this page's memory only: never stored, never sent to the
// server; the page itself broadcasts the signed transaction to the configured node.
"use strict";

const curate = (() => {
  const DOMAIN = "curation-market/v1";
  const STORE = "curation-market/v1/salt/"; // localStorage key prefix, then the commitment
  const BACKUP_FORMAT = "curation-market-salts";
  const DHIVE = "/static/vendor/dhive-1.3.6.js";
  const utf8 = new TextEncoder();

  // ---- bytes, amounts, JSON exactly as Python writes them ----------------------------------
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  function unhex(s) {
    if (typeof s !== "string" || !/^([0-9a-f]{2})*$/.test(s)) throw new Error("not lowercase hex");
    return Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
  }
  function text(s, what) {
    if (typeof s !== "string") throw new Error(`${what} must be a string`);
    // Python refuses to encode a lone surrogate; TextEncoder would silently write U+FFFD
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(^|[^\ud800-\udbff])[\udc00-\udfff]/.test(s)) {
      throw new Error(`${what} is not valid Unicode (lone surrogate)`);
    }
    return utf8.encode(s);
  }
  function ascii(s, what) {
    if (!/^[\x00-\x7f]*$/.test(s)) throw new Error(`${what} must be ASCII`);
    return utf8.encode(s);
  }
  // milli-units as a BigInt: a prediction may exceed 2^53 milli (15 whole digits are valid)
  function milliOf(x, what) {
    const v = typeof x === "bigint" ? x : typeof x === "number" && Number.isSafeInteger(x) ? BigInt(x)
      : typeof x === "string" && /^[0-9]+$/.test(x) ? BigInt(x) : null;
    if (v === null) throw new Error(`${what} must be an integer number of milli-units`);
    return v;
  }
  // "12.345" → 12345n, as curation.payload.parse_milli (ASCII digits, ≤ 15 whole, ≤ 3 decimals)
  function parseMilli(s) {
    const m = typeof s === "string" ? /^([0-9]{1,15})(?:\.([0-9]{1,3}))?$/.exec(s.trim()) : null;
    return m ? BigInt(m[1]) * 1000n + BigInt((m[2] || "").padEnd(3, "0")) : null;
  }
  function formatMilli(v) {
    const x = milliOf(v, "amount");
    return `${x / 1000n}.${String(x % 1000n).padStart(3, "0")}`;
  }
  // a bid "0.600" → 600 thousandths (curator/ops.py bid_milli)
  function bidMilli(s) {
    const v = parseMilli(String(s));
    if (v === null || v > 1000n) throw new Error(`bid must be a decimal in 0..1, got ${s}`);
    return v;
  }
  // json.dumps(obj, separators=(",", ":"), sort_keys=True): ASCII only, \uXXXX lowercase
  const pyString = (s) => JSON.stringify(s).replace(/[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  function pyJson(obj) {
    return `{${Object.keys(obj).sort().map((k) => {
      const v = obj[k];
      return `${pyString(k)}:${typeof v === "string" ? pyString(v) : JSON.stringify(v)}`;
    }).join(",")}}`;
  }

  // ---- the commitment (spec §2, curation/commitment.py) -------------------------------------
  async function commitment(chainId, author, permlink, predictor, prediction, salt,
    stake = null, bid = null) {
    const saltBytes = typeof salt === "string" ? unhex(salt) : salt;
    if (!(saltBytes instanceof Uint8Array) || saltBytes.length !== 32) {
      throw new Error(`salt must be exactly 32 bytes, got ${saltBytes && saltBytes.length}`);
    }
    const p = milliOf(prediction, "prediction");
    const fields = [utf8.encode(DOMAIN), ascii(chainId, "chain id"), text(author, "author"),
      text(permlink, "permlink"), text(predictor, "predictor"), ascii(p.toString(), "prediction"),
      saltBytes];
    if (stake !== null && stake !== undefined) {
      fields.push(utf8.encode(`stake:${milliOf(stake, "stake")}`));
    }
    if (bid !== null && bid !== undefined) {
      const b = milliOf(bid, "bid");
      if (b > 1000n) throw new Error("bid must be within 0..1000 thousandths");
      fields.push(utf8.encode(`bid:${b}`));
    }
    const size = fields.reduce((n, f) => n + 4 + f.length, 0);
    const buf = new Uint8Array(size);
    const view = new DataView(buf.buffer);
    let at = 0;
    for (const f of fields) {
      view.setUint32(at, f.length, false);
      buf.set(f, at + 4);
      at += 4 + f.length;
    }
    if (!crypto.subtle) throw new Error("Web Crypto needs a secure context: open the page over https (or on localhost)");
    return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", buf)));
  }

  const newSalt = () => hex(crypto.getRandomValues(new Uint8Array(32)));

  // ---- payloads (curation_market/curator/ops.py) --------------------------------------------
  const commitPayload = (author, permlink, c) => ({ v: 1, op: "commit", author, permlink, commitment: c });
  function revealPayload(e) {
    const doc = { v: 1, op: "reveal", author: e.author, permlink: e.permlink,
      prediction: formatMilli(e.prediction), salt: e.salt };
    if (e.stake != null) doc.stake = formatMilli(e.stake);
    if (e.bid != null) doc.bid = formatMilli(e.bid);
    return doc;
  }
  const customJsonOp = (id, predictor, payload) => ["custom_json", {
    required_auths: [], required_posting_auths: [predictor], id, json: pyJson(payload) }];

  // ---- salts in localStorage -----------------------------------------------------------------
  function saveEntry(e) {
    localStorage.setItem(STORE + e.commitment, JSON.stringify(e));
    // read back: a full or disabled storage must stop the commit before it is broadcast
    if (localStorage.getItem(STORE + e.commitment) === null) throw new Error("localStorage did not keep the salt");
  }
  function entries() {
    const out = [];
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      if (!k.startsWith(STORE)) continue;
      try { out.push(JSON.parse(localStorage.getItem(k))); } catch (_) { /* not ours */ }
    }
    return out.sort((a, b) => (a.saved_at < b.saved_at ? -1 : 1));
  }
  function update(c, changes) {
    const raw = localStorage.getItem(STORE + c);
    if (raw === null) return;
    saveEntry({ ...JSON.parse(raw), ...changes });
  }
  // A salt is dropped only once its reveal window has passed on chain time (the indexed head
  // of a database on the same chain: another chain's clock says nothing about this one).
  function prune(chainNow, chainId) {
    if (!chainNow) return 0;
    let n = 0;
    for (const e of entries()) {
      if (chainId && e.chain_id !== chainId) continue;
      if (e.reveal_until && e.reveal_until < chainNow) { localStorage.removeItem(STORE + e.commitment); n++; }
    }
    return n;
  }

  function backupDoc() {
    return { format: BACKUP_FORMAT, v: 1, exported_at: new Date().toISOString(), entries: entries() };
  }
  function downloadBackup() {
    const blob = new Blob([JSON.stringify(backupDoc(), null, 1)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `curation-market-salts-${new Date().toISOString().slice(0, 10)}.json`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }
  const RANK = { saved: 0, failed: 0, committed: 1, revealed: 2 };
  const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/;
  // only the fields the page writes, each of its own form: a file is data, never markup
  function clean(e) {
    const str = (v, re) => (typeof v === "string" && re.test(v) ? v : null);
    return { v: 1, chain_id: e.chain_id, custom_json_id: str(e.custom_json_id, /^[\x21-\x7e]{1,32}$/),
      author: e.author, permlink: e.permlink, predictor: e.predictor, prediction: String(e.prediction),
      stake: e.stake == null ? null : String(e.stake), bid: e.bid == null ? null : String(e.bid),
      salt: e.salt, commitment: e.commitment, created: str(e.created, ISO),
      reveal_from: str(e.reveal_from, ISO), reveal_until: str(e.reveal_until, ISO),
      saved_at: str(e.saved_at, /^[0-9T:.Z-]{10,30}$/) || new Date().toISOString(),
      state: e.state in RANK ? e.state : "saved", commit_trx: str(e.commit_trx, /^[0-9a-f]{40}$/),
      reveal_trx: str(e.reveal_trx, /^[0-9a-f]{40}$/), via: str(e.via, /^(keychain|key)$/) };
  }
  // Every imported entry is checked: its commitment must hash from its own fields, so a
  // damaged file can never overwrite a good salt.
  async function importBackup(raw) {
    const doc = typeof raw === "string" ? JSON.parse(raw) : raw;
    if (!doc || doc.format !== BACKUP_FORMAT || !Array.isArray(doc.entries)) {
      throw new Error("not a curation-market salt backup");
    }
    const result = { added: 0, kept: 0, rejected: 0 };
    for (const raw of doc.entries) {
      let ok = false, e = null;
      try {
        e = clean(raw);
        ok = (await commitment(e.chain_id, e.author, e.permlink, e.predictor, e.prediction,
          e.salt, e.stake, e.bid)) === e.commitment;
      } catch (_) { ok = false; }
      if (!ok) { result.rejected++; continue; }
      const have = localStorage.getItem(STORE + e.commitment);
      if (have !== null && (RANK[JSON.parse(have).state] || 0) >= (RANK[e.state] || 0)) {
        result.kept++;
        continue;
      }
      saveEntry(e);
      result.added++;
    }
    return result;
  }

  // ---- chain time --------------------------------------------------------------------------
  // The indexed head's time plus the seconds since it was read: countdowns only, never a rule.
  let asOf = null; // { chain: ms, wall: ms }
  function setAsOf(iso) { if (iso) asOf = { chain: Date.parse(`${iso}Z`), wall: Date.now() }; }
  const chainNowMs = () => (asOf ? asOf.chain + (Date.now() - asOf.wall) : null);
  const isoOf = (ms) => new Date(ms).toISOString().slice(0, 19);
  const msOf = (iso) => Date.parse(`${iso}Z`);
  function duration(s) {
    s = Math.max(0, Math.round(s));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
    if (m) return `${m} min ${String(sec).padStart(2, "0")} s`;
    return `${sec} s`;
  }
  function localPhase(m, now) {
    if (m.phase === "settled" || m.phase === "deleted" || now === null || !m.commit_until) return m.phase;
    if (now <= msOf(m.commit_until)) return "open";
    if (now <= msOf(m.reveal_until)) return "revealing";
    return "closed";
  }

  // ---- the node (JSON-RPC from the browser) and signing --------------------------------------
  let rid = 0;
  async function rpc(url, method, params) {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++rid, method, params }) });
    const body = await r.json();
    if (body.error) throw new Error(`node: ${body.error.message || JSON.stringify(body.error)}`);
    return body.result;
  }
  let dhiveLoading = null;
  function loadDhive() {
    if (window.dhive) return Promise.resolve(window.dhive);
    dhiveLoading = dhiveLoading || new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = DHIVE;
      s.onload = () => resolve(window.dhive);
      s.onerror = () => reject(new Error(`cannot load ${DHIVE}`));
      document.head.appendChild(s);
    });
    return dhiveLoading;
  }
  const keychainOf = (cfg) => (cfg.chain === "steem" ? window.steem_keychain : window.hive_keychain);
  const keychainName = (cfg) => (cfg.chain === "steem" ? "Steem Keychain" : "Hive Keychain");

  // The posting key typed into the dialog lives here only (never in storage, never sent to
  // the server); reloading the page forgets it.
  let memoryKey = null; // { account, wif }

  async function signWithKey(cfg, account, wif, op) {
    if (!cfg.node_url) throw new Error("no node to broadcast to: set [serve] node_url (or serve --node-url)");
    const dhive = await loadDhive();
    let key;
    try { key = dhive.PrivateKey.fromString(wif); } catch (_) { throw new Error("not a private key (WIF)"); }
    const version = await rpc(cfg.node_url, "condenser_api.get_version", []);
    if (version && version.chain_id && version.chain_id !== cfg.chain_id) {
      throw new Error(`the node's chain id ${version.chain_id} is not this market's ${cfg.chain_id}`);
    }
    const props = await rpc(cfg.node_url, "condenser_api.get_dynamic_global_properties", []);
    const tx = {
      ref_block_num: props.head_block_number & 0xffff,
      ref_block_prefix: new DataView(unhex(props.head_block_id).buffer).getUint32(4, true),
      expiration: isoOf(msOf(props.time) + 60_000), // the node's head time, not this clock
      operations: [op], extensions: [] };
    const client = new dhive.Client(cfg.node_url, { chainId: cfg.chain_id, addressPrefix: cfg.address_prefix });
    const signed = client.broadcast.sign(tx, key);
    await rpc(cfg.node_url, "condenser_api.broadcast_transaction", [signed]);
    return { trx_id: dhive.cryptoUtils.generateTrxId(signed), head_time: props.time };
  }
  function signWithKeychain(cfg, kc, account, op, what) {
    return new Promise((resolve, reject) => {
      kc.requestCustomJson(account, op[1].id, "Posting", op[1].json, `curation-market ${what}`,
        (r) => (r && r.success ? resolve({ trx_id: r.result && r.result.id })
          : reject(new Error(`${keychainName(cfg)}: ${(r && (r.message || r.error)) || "refused"}`))),
        cfg.node_url || undefined);
    });
  }
  async function broadcast(cfg, account, op, what) {
    const kc = keychainOf(cfg);
    if (kc) return { ...(await signWithKeychain(cfg, kc, account, op, what)), via: "keychain" };
    if (!memoryKey || memoryKey.account !== account) throw new Error("no posting key for this account");
    return { ...(await signWithKey(cfg, account, memoryKey.wif, op)), via: "key" };
  }

  // ---- commit and reveal --------------------------------------------------------------------
  async function commit(cfg, m, form) {
    const account = form.account.trim().toLowerCase();
    if (!/^[a-z][a-z0-9.-]{2,15}$/.test(account)) throw new Error("account: a Hive/Steem account name");
    const prediction = parseMilli(form.prediction);
    if (prediction === null) throw new Error(`payout: a decimal amount like 12.345 (${cfg.currency})`);
    if (prediction > BigInt(cfg.max_prediction)) throw new Error(`payout: at most ${formatMilli(cfg.max_prediction)}`);
    let stake = null, bid = null;
    if (cfg.staked) {
      stake = parseMilli(form.stake || "");
      if (stake === null) throw new Error(`stake: an amount like 10.000 (${cfg.currency})`);
      bid = bidMilli(form.bid || "");
    }
    if (account === m.author) throw new Error("an author cannot predict their own post");
    const salt = newSalt();
    const c = await commitment(cfg.chain_id, m.author, m.permlink, account, prediction, salt, stake, bid);
    const entry = { v: 1, chain_id: cfg.chain_id, custom_json_id: cfg.custom_json_id,
      author: m.author, permlink: m.permlink, predictor: account, prediction: prediction.toString(),
      stake: stake === null ? null : stake.toString(), bid: bid === null ? null : bid.toString(),
      salt, commitment: c, created: m.created, reveal_from: m.reveal_from,
      reveal_until: m.reveal_until, saved_at: new Date().toISOString(), state: "saved" };
    saveEntry(entry); // before anything leaves the page
    const op = customJsonOp(cfg.custom_json_id, account, commitPayload(m.author, m.permlink, c));
    try {
      const sent = await broadcast(cfg, account, op, "commit");
      update(c, { state: "committed", commit_trx: sent.trx_id || null, via: sent.via });
      return { ...entry, ...sent };
    } catch (err) {
      update(c, { state: "failed", error: String(err.message || err) });
      throw err;
    }
  }
  async function reveal(cfg, e) {
    const op = customJsonOp(e.custom_json_id || cfg.custom_json_id, e.predictor, revealPayload(e));
    const sent = await broadcast(cfg, e.predictor, op, "reveal");
    update(e.commitment, { state: "revealed", reveal_trx: sent.trx_id || null });
    return sent;
  }

  // ---- the panel on a market's page ------------------------------------------------------------
  let cfgCache = null;
  async function config() {
    if (!cfgCache) {
      const r = await fetch("/api/client-config");
      const body = await r.json();
      if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
      cfgCache = body;
    }
    return cfgCache;
  }
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const hms = (iso) => (iso ? esc(iso.replace("T", " ")) : "–");

  let state = null; // { cfg, m, rendered phase, timer }
  let onChange = null; // the page's re-render of the market (set by mount)

  // The stored entries of this post, one per predictor: the one whose commitment the chain
  // holds (a later commit replaces an earlier one), else the latest saved.
  function revealable(cfg, m) {
    const live = new Map(m.predictions.map((p) => [p.predictor, p.commitment]));
    // a broadcast the page saw fail may still have reached the chain: then it counts
    const mine = entries().filter((e) => e.chain_id === cfg.chain_id && e.author === m.author
      && e.permlink === m.permlink && (e.state !== "failed" || live.get(e.predictor) === e.commitment));
    const by = new Map();
    for (const e of mine) {
      const best = by.get(e.predictor);
      const onChain = live.get(e.predictor) === e.commitment;
      if (!best || onChain || (live.get(e.predictor) !== best.commitment && e.saved_at > best.saved_at)) {
        by.set(e.predictor, e);
      }
    }
    return [...by.values()].map((e) => ({ ...e, on_chain: live.get(e.predictor) === e.commitment }));
  }

  function countdowns(m, now) {
    if (m.phase === "settled") return `<span id="cd-settled">paid in block ${esc(m.paid_block)}</span>`;
    if (m.phase === "deleted") return "<span>deleted: nothing is paid</span>";
    if (now === null || !m.commit_until) return "";
    const left = (iso) => (msOf(iso) - now) / 1000;
    const parts = [];
    if (left(m.commit_until) >= 0) parts.push(`<span id="cd-commit">commits close in ${duration(left(m.commit_until))}</span> (${hms(m.commit_until)})`);
    else parts.push(`<span id="cd-commit">commits closed ${hms(m.commit_until)}</span>`);
    if (left(m.reveal_from) > 0) parts.push(`<span id="cd-reveal-open">reveals open in ${duration(left(m.reveal_from))}</span>`);
    if (left(m.reveal_until) >= 0) parts.push(`<span id="cd-reveal-close">reveals close in ${duration(left(m.reveal_until))}</span> (${hms(m.reveal_until)})`);
    else parts.push(`<span id="cd-reveal-close">reveals closed ${hms(m.reveal_until)}</span>`);
    return parts.join(" · ");
  }

  function panelHtml(cfg, m, phase, now) {
    const n = m.predictions.length;
    const times = m.predictions.map((p) => `<li>${hms(p.commit_time)} · ${esc(p.predictor)}</li>`).join("");
    const kc = keychainOf(cfg);
    let actions = "";
    if (phase === "open") actions += `<button id="predict" class="primary">Predict</button>`;
    const mine = phase === "revealing" ? revealable(cfg, m) : [];
    const rows = mine.map((e) => `<li class="mine" data-predictor="${esc(e.predictor)}">
      <b>${esc(e.predictor)}</b> · commitment <code>${esc(e.commitment.slice(0, 12))}…</code>
      ${e.on_chain ? "on chain" : "<i>not (yet) the commitment on chain</i>"} ·
      ${e.state === "revealed" ? `<span class="ok">revealed${e.reveal_trx ? ` (trx ${esc(e.reveal_trx.slice(0, 10))}…)` : ""}</span>
        <button class="reveal-now secondary" data-c="${esc(e.commitment)}">Reveal again</button>`
        : `<button class="reveal-now primary" data-c="${esc(e.commitment)}">Reveal now</button>`}</li>`).join("");
    const stored = phase === "open" ? entries().filter((e) => e.chain_id === cfg.chain_id
      && e.author === m.author && e.permlink === m.permlink) : [];
    const storedBlock = stored.length ? `<p class="why" id="stored-here">Stored in this browser:
      ${stored.map((e) => `${esc(e.predictor)} · <code>${esc(e.commitment.slice(0, 12))}…</code> (${esc(e.state)})`).join(" · ")}.
      A new commit by the same account replaces the earlier one on chain.</p>` : "";
    const revealBlock = phase === "revealing"
      ? (rows ? `<p>Salts stored in this browser for this market:</p><ul class="mine">${rows}</ul>`
        : "<p><i>No salt for this market is stored in this browser: import the backup from the device you committed on.</i></p>")
      : "";
    const note = {
      open: "Commit a sealed prediction of the final payout now; reveal it after the commit window.",
      revealing: "The commit window has closed: reveal your prediction before the reveal window closes, or it counts as a miss.",
      closed: "The reveal window has closed: predictions are public and wait for the payout.",
      settled: "Settled at payout: predictions, the band and the rewards are below.",
      deleted: "The post was deleted: its market is void.",
    }[phase] || "";
    const signer = kc ? `${keychainName(cfg)} found: it signs with your posting key.`
      : cfg.node_url ? "No Keychain: signing with a posting key held in this page's memory."
        : "No Keychain and no node configured: this page cannot sign.";
    return `<div class="curate-head"><span class="phase ${esc(phase)}">${esc(phase)}</span>
      <span class="countdowns">${countdowns(m, now)}</span></div>
      <p class="why">${note} Chain time, as of block ${esc(state && state.block)}.</p>
      <p id="n-commits">${n} commitment${n === 1 ? "" : "s"}${phase === "open" ? " so far" : ""}${n ? ":" : "."}</p>
      ${n ? `<ul class="times">${times}</ul>` : ""}
      ${revealBlock}${storedBlock}
      <div class="actions">${actions}<span id="curate-status" role="status"></span></div>
      <p class="why">${signer} Salts stay in this browser until their reveal window has passed:
      <a href="#" id="backup">download a backup</a> ·
      <label class="import">import a backup <input type="file" id="import" accept="application/json,.json"></label></p>`;
  }

  function dialogHtml(cfg, m, mode) {
    const kc = keychainOf(cfg);
    const keyField = kc ? `<p class="why">${keychainName(cfg)} will ask you to approve a custom_json
        with your <b>posting</b> key.</p>`
      : `<label>posting key <input name="wif" type="password" autocomplete="off" size="52"
        placeholder="5…"></label><p class="why">Held in this page's memory only: never stored,
        never sent to the server. The page signs with it and broadcasts to ${esc(cfg.node_url || "–")}.</p>`;
    const staked = cfg.staked ? `<label>stake <input name="stake" size="10" placeholder="10.000"> ${esc(cfg.currency)}</label>
      <label>bid <input name="bid" size="6" placeholder="0.600"></label>
      <p class="why">Rule set <code>${esc(cfg.staked)}</code>: the stake and the bid are sealed with the prediction.</p>` : "";
    const body = mode === "commit"
      ? `<label>account <input name="account" size="16" autocomplete="username"
          value="${esc(memoryKey ? memoryKey.account : "")}"></label>
        <label>final payout <input name="prediction" size="12" placeholder="12.345"> ${esc(cfg.currency)}</label>
        ${staked}${keyField}`
      : `<p>Reveal for <b>${esc(mode.predictor)}</b>: the posting key is needed again (reloading
        the page forgot it).</p><input type="hidden" name="account" value="${esc(mode.predictor)}">${keyField}`;
    return `<form method="dialog" id="predict-form">
      <h3>${mode === "commit" ? "Predict" : "Reveal"} @${esc(m.author)}/${esc(m.permlink)}</h3>
      <p class="countdowns">${countdowns(m, chainNowMs())}</p>
      ${body}
      <div class="actions"><button value="go" class="primary" id="dialog-go">${mode === "commit" ? "Commit" : "Reveal"}</button>
      <button value="cancel" formnovalidate id="dialog-cancel">Cancel</button></div>
      <p id="dialog-status" role="status"></p></form>`;
  }

  function say(id, msg, bad = false) {
    const el = document.getElementById(id);
    if (el) { el.textContent = msg; el.className = bad ? "err" : "ok"; }
  }

  function openDialog(mode, revealEntry = null) {
    const { cfg, m } = state;
    let dlg = document.getElementById("predict-dialog");
    if (!dlg) {
      dlg = document.createElement("dialog");
      dlg.id = "predict-dialog";
      document.body.appendChild(dlg);
    }
    dlg.innerHTML = dialogHtml(cfg, m, mode);
    dlg.dataset.mode = mode === "commit" ? "commit" : "reveal";
    dlg.dataset.market = `${m.author}/${m.permlink}`;
    delete dlg.dataset.done;
    const form = dlg.querySelector("form");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (ev.submitter && ev.submitter.value === "cancel") { dlg.close(); return; }
      const f = Object.fromEntries(new FormData(form));
      const go = document.getElementById("dialog-go");
      go.disabled = true;
      try {
        if (f.wif !== undefined) {
          if (!f.wif.trim()) throw new Error("posting key: paste the account's private posting key");
          memoryKey = { account: f.account.trim().toLowerCase(), wif: f.wif.trim() };
        }
        if (mode === "commit") {
          say("dialog-status", "salt stored in this browser; signing and broadcasting…");
          const done = await commit(cfg, m, f);
          say("dialog-status", `committed: trx ${done.trx_id || "(sent by Keychain)"}; reveal after ${hms(m.reveal_from)}`);
          dlg.dataset.done = "1";
          document.getElementById("dialog-cancel").textContent = "Close";
        } else {
          await doReveal(revealEntry);
          dlg.close();
        }
      } catch (err) {
        say("dialog-status", String(err.message || err), true);
      } finally {
        go.disabled = false;
        render();
      }
    });
    dlg.showModal();
    return dlg;
  }

  async function doReveal(e) {
    const { cfg } = state;
    say("curate-status", `revealing for ${e.predictor}…`);
    const sent = await reveal(cfg, e);
    say("curate-status", `revealed for ${e.predictor}: trx ${sent.trx_id || "(sent by Keychain)"}`);
  }

  function render() {
    if (!state) return;
    const el = document.getElementById("curate");
    if (!el) { stop(); return; }
    const now = chainNowMs();
    const phase = localPhase(state.m, now);
    const status = document.getElementById("curate-status");
    const keep = status ? [status.textContent, status.className] : null;
    el.innerHTML = panelHtml(state.cfg, state.m, phase, now);
    el.dataset.phase = phase;
    state.phase = phase;
    if (keep && keep[0]) { const s = document.getElementById("curate-status"); s.textContent = keep[0]; s.className = keep[1]; }
    const predict = document.getElementById("predict");
    if (predict) predict.onclick = () => openDialog("commit");
    for (const b of el.querySelectorAll("button.reveal-now")) {
      b.onclick = async () => {
        const e = revealable(state.cfg, state.m).find((x) => x.commitment === b.dataset.c);
        if (!e) return;
        if (!keychainOf(state.cfg) && (!memoryKey || memoryKey.account !== e.predictor)) {
          openDialog({ predictor: e.predictor }, e);
          return;
        }
        b.disabled = true;
        try { await doReveal(e); } catch (err) { say("curate-status", String(err.message || err), true); }
        render();
      };
    }
    document.getElementById("backup").onclick = (ev) => { ev.preventDefault(); downloadBackup(); };
    document.getElementById("import").onchange = async (ev) => {
      const file = ev.target.files[0];
      if (!file) return;
      try {
        const r = await importBackup(await file.text());
        say("curate-status", `backup imported: ${r.added} added, ${r.kept} already here, ${r.rejected} rejected`);
      } catch (err) { say("curate-status", `import failed: ${err.message || err}`, true); }
      render();
    };
  }

  function tick() {
    if (!state) return;
    if (!document.getElementById("curate")) { stop(); return; }
    const now = chainNowMs();
    if (localPhase(state.m, now) !== state.phase) { render(); return; }
    for (const box of document.querySelectorAll("#curate .countdowns, #predict-dialog .countdowns")) {
      box.innerHTML = countdowns(state.m, now);
    }
  }
  function stop() { if (state && state.timer) clearInterval(state.timer); state = null; }

  // Called by the market view: the market document as served, and its envelope.
  async function mount(m, envelope) {
    stop();
    const open = document.getElementById("predict-dialog");
    if (open && open.open && open.dataset.market !== `${m.author}/${m.permlink}`) open.close();
    setAsOf(envelope.as_of_time);
    const cfg = await config();
    prune(envelope.as_of_time, cfg.chain_id);
    state = { cfg, m, block: envelope.as_of_block, phase: null, timer: setInterval(tick, 1000) };
    render();
    pending();
  }
  async function refresh() {
    if (!state) return;
    const r = await fetch(`/api/markets/${encodeURIComponent(state.m.author)}/${encodeURIComponent(state.m.permlink)}`);
    if (!r.ok) return;
    const body = await r.json();
    if (onChange && (body.market.phase !== state.m.phase || body.market.n_commits !== state.m.n_commits
      || body.market.n_revealed !== state.m.n_revealed)) { onChange(); return; }
    setAsOf(body.as_of_time);
    state.m = body.market;
    state.block = body.as_of_block;
    render();
  }
  setInterval(() => { if (state && (state.phase === "open" || state.phase === "revealing")) refresh(); }, 20000);

  // Reveals due now, on every view: a banner that links to each market, so a stored salt is
  // never forgotten while its reveal window is open.
  function pending() {
    const box = document.getElementById("pending");
    if (!box) return;
    const now = chainNowMs();
    const due = now === null ? [] : entries().filter((e) => e.state !== "revealed" && e.state !== "failed"
      && e.reveal_from && msOf(e.reveal_from) <= now && now <= msOf(e.reveal_until));
    box.innerHTML = due.length ? `<b>Reveal now</b>: ${due.map((e) => `<a href="#/market/${esc(e.author)}/${esc(e.permlink)}">@${esc(e.author)}/${esc(e.permlink)}</a> (${esc(e.predictor)}, closes in ${duration((msOf(e.reveal_until) - now) / 1000)})`).join(" · ")}` : "";
    box.hidden = !due.length;
  }

  // ---- reveal from a list (the curator's own view), not from a market's panel ---------------
  // The stored entry of a commitment, or null: the page's curator view merges it with the
  // API's open commitments (the API never serves a predicted value; this browser knows it).
  function stored(c) {
    const raw = localStorage.getItem(STORE + c);
    try { return raw === null ? null : JSON.parse(raw); } catch (_) { return null; }
  }
  // true when revealing for this account needs the posting key typed first (no Keychain and
  // no key for it in this page's memory)
  async function needsKey(account) {
    const cfg = await config();
    return !keychainOf(cfg) && (!memoryKey || memoryKey.account !== account);
  }
  // Reveal a stored commitment: its salt and values from localStorage, signed as the panel
  // does (Keychain, else the key in memory; a `wif` given here is kept in memory as typed in
  // the dialog would be).
  async function revealStored(c, wif = null) {
    const e = stored(c);
    if (!e) throw new Error("no salt for this commitment is stored in this browser");
    if (wif) memoryKey = { account: e.predictor, wif: String(wif).trim() };
    const sent = await reveal(await config(), e);
    pending();
    return sent;
  }

  return { stored, needsKey, revealStored, commitment, commitPayload, revealPayload, customJsonOp, pyJson, parseMilli, formatMilli,
    bidMilli, newSalt, entries, saveEntry, prune, backupDoc, downloadBackup, importBackup, mount,
    refresh, pending, setAsOf, config, localPhase, duration, set onChange(f) { onChange = f; },
    forgetKey() { memoryKey = null; }, STORE };
})();
window.curate = curate;
