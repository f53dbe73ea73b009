// The curator's page: plain JS over the read-only API (/api/...), no build step.
// Views (hash routes): #/ markets, #/market/AUTHOR/PERMLINK, #/curator/NAME, #/leaderboard,
// #/forecasts.
// The curation dialog (commit, reveal, salts, signing) is curate.js, loaded before this file.
"use strict";

const view = document.getElementById("view");
const asof = document.getElementById("asof");

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => (
  { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const milli = (m) => (m == null ? "–" : (m / 1000).toFixed(3));
const num = (x, d = 4) => (x == null ? "–" : Number(x).toFixed(d));

// The chain's dollar token (SBD on Steem, HBD on Hive): the unit of every amount shown.
let currency = null;
async function unit() {
  if (currency === null) currency = (await api("/api/status")).currency || "";
  return currency;
}

async function api(path) {
  const r = await fetch(path);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
  asof.textContent = `as of block ${body.as_of_block}` + (body.as_of_time ? ` (${body.as_of_time})` : "");
  if (window.curate) curate.setAsOf(body.as_of_time);
  return body;
}

function table(headers, rows) {
  const th = headers.map(([h, cls]) => `<th class="${cls || ""}">${esc(h)}</th>`).join("");
  return `<table><thead><tr>${th}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

const when = (iso) => (iso ? esc(iso.replace("T", " ")) : "–");

async function marketsView(params) {
  // The page shows markets that received commits unless "all" is ticked: most fresh posts have
  // none, and a list of empty markets is not what a curator opens the page for.
  const q = new URLSearchParams(params);
  q.delete("all");
  if (!params.all) q.set("with_commits", "true");
  if (!q.has("limit")) q.set("limit", "50");
  const d = await api(`/api/markets?${q}`);
  const rows = d.items.map((m) => `<tr>
    <td><a href="#/market/${esc(m.author)}/${esc(m.permlink)}">@${esc(m.author)}/${esc(m.permlink)}</a></td>
    <td>${m.is_reply ? "<i>reply</i>" : esc(m.category || "")}</td><td class="nowrap">${when(m.created)}</td>
    <td><span class="phase ${esc(m.phase)}">${esc(m.phase)}</span></td>
    <td class="num">${m.n_commits}</td><td class="num">${m.n_revealed}</td>
    <td class="num">${milli(m.final_payout)}</td><td class="num">${m.n_qualified ?? "–"}</td></tr>`);
  const next = d.next_cursor
    ? `<a id="more" href="#/?${new URLSearchParams({ ...params, cursor: d.next_cursor })}">next page →</a>` : "";
  view.innerHTML = `<h2>Markets</h2>
    <form class="filters" id="f">phase <select name="phase"><option value="">any</option>
    ${["open", "revealing", "closed", "settled", "deleted"].map((p) =>
      `<option ${params.phase === p ? "selected" : ""}>${p}</option>`).join("")}</select>
    author <input name="author" size="12" value="${esc(params.author || "")}">
    tag <input name="tag" size="12" value="${esc(params.tag || "")}">
    created from <input name="from" type="date" value="${esc(params.from || "")}">
    to <input name="to" type="date" value="${esc(params.to || "")}">
    <label><input name="all" type="checkbox" value="1" ${params.all ? "checked" : ""}>
    include markets without commits</label>
    <button>filter</button></form>
    ${d.items.length ? "" : "<p>No market matches these filters.</p>"}
    ${table([["post"], ["category"], ["created"], ["phase"], ["commits", "num"],
      ["revealed", "num"], ["final payout", "num"], ["qualified", "num"]], rows)}${next}`;
  document.getElementById("f").onsubmit = (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(e.target)) if (v) p.set(k, v);
    location.hash = `#/?${p}`;
  };
}

// Revealed predictions against the final payout: the 90–100 % band shaded, the payout as a
// line, winners filled. x = commit order (chain position), y = predicted payout.
function drawChart(canvas, preds, final, cur) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 76, R = 10, T = 10, B = 30;
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  const pts = preds.filter((p) => p.prediction != null);
  const known = final != null;  // null: predictions are public, the payout is not known yet
  const top = Math.max(known ? final : 0, ...pts.map((p) => p.prediction), 1) * 1.1;
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const n = Math.max(preds.length, 1);
  const x = (i) => L + (W - L - R) * ((i + 0.5) / n);
  if (known) {
    ctx.fillStyle = "rgba(46, 160, 67, 0.18)";
    ctx.fillRect(L, y(final), W - L - R, y(final * 0.9) - y(final));
    ctx.strokeStyle = "#2ea043"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(L, y(final)); ctx.lineTo(W - R, y(final)); ctx.stroke();
  }
  ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(L, T); ctx.lineTo(L, H - B); ctx.lineTo(W - R, H - B); ctx.stroke();
  ctx.fillStyle = "#444"; ctx.font = "11px sans-serif"; ctx.textAlign = "right";
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    ctx.fillText(milli(Math.round(v)), L - 4, y(v) + 4);
  }
  const axis = `predicted payout (${cur})`;  // the money axis says its unit
  ctx.save(); ctx.translate(14, T + (H - T - B) / 2); ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center"; ctx.fillText(axis, 0, 0); ctx.restore();
  canvas.dataset.yAxis = axis;
  ctx.textAlign = "left";
  ctx.fillText(known ? `final payout ${milli(final)} ${cur} · band 90–100 %`
    : "revealed predictions · final payout not known yet", L + 6, known ? Math.max(y(final) - 6, T + 10) : T + 10);
  ctx.fillText("predictions in commit order →", L + 6, H - 10);
  ctx.textAlign = "right";
  ctx.fillText("● rewarded (dark blue) · in band, no reward (light blue) · outside / voted (red)",
    W - R, H - 10);
  ctx.textAlign = "left";
  preds.forEach((p, i) => {
    if (p.prediction == null) return;
    ctx.beginPath(); ctx.arc(x(i), y(p.prediction), 5, 0, 2 * Math.PI);
    ctx.fillStyle = !known ? "#777" : p.reward > 0 ? "#0b5cad" : p.qualified ? "#7fb0e0" : "#d9534f";
    ctx.fill();
    if (p.reward > 0) {  // name the winners next to their point
      ctx.fillStyle = "#0b5cad"; ctx.font = "bold 11px sans-serif";
      ctx.textAlign = x(i) > W - 160 ? "right" : "left";
      ctx.fillText(`${p.predictor} +${milli(p.reward)}`, x(i) + (ctx.textAlign === "right" ? -8 : 8),
        y(p.prediction) + 14);
    }
  });
  canvas.dataset.drawn = String(pts.length);
}

// One paragraph a curator reads first: who was paid, how much, and the rule that decided it.
function whoWon(m, s) {
  const revealed = m.predictions.filter((p) => p.prediction != null).length;
  const winners = m.predictions.filter((p) => p.reward > 0).sort((a, b) => b.reward - a.reward);
  const inBand = m.predictions.filter((p) => p.qualified).length;
  const rule = `A prediction qualifies when it lies within 90–100 % of the final payout
    (${milli(s.band[0])}–${milli(s.band[1])}); the pool is split among qualifiers by weight
    RP·SP·CP (track record, stake, closeness to earlier predictions).`;
  if (!winners.length) {
    const why = !m.n_commits ? "nobody predicted" : !revealed ? "no prediction was revealed"
      : inBand ? `the ${inBand} prediction${inBand === 1 ? "" : "s"} in the band weighed 0
        (weight RP·SP·CP: no known Steem Power, or a copy of an earlier prediction)`
        : "no revealed prediction landed in the band";
    return `<div class="won"><b>No winner</b>: ${why}; the pool ${milli(s.pool)} was returned.
      <br><small>${rule}</small></div>`;
  }
  const names = winners.map((p) => `<a href="#/curator/${esc(p.predictor)}">${esc(p.predictor)}</a>
    ${milli(p.reward)}`).join(" · ");
  return `<div class="won"><b>Won</b>: ${names}. ${inBand} of ${revealed} revealed predictions
    were in the band${s.returned ? `; ${milli(s.returned)} returned` : ""}.
    <br><small>${rule}</small></div>`;
}

async function marketView(author, permlink) {
  const d = await api(`/api/markets/${encodeURIComponent(author)}/${encodeURIComponent(permlink)}`);
  const m = d.market;
  const s = m.settlement;
  let head = `<h2>@${esc(m.author)}/${esc(m.permlink)} <span class="phase ${esc(m.phase)}">${esc(m.phase)}</span></h2>
    <p>created ${esc(m.created)} · commits until ${esc(m.commit_until)} · reveals until ${esc(m.reveal_until)}
    · ${m.n_commits} commits, ${m.n_revealed} revealed</p>
    <section id="curate" class="curate" aria-label="curation dialog"></section>`;
  if (s) {
    head += `<p>final payout <b>${milli(s.final_payout)}</b> · pool ${milli(s.pool)} · returned
      ${milli(s.returned)} · band ${milli(s.band[0])}–${milli(s.band[1])} · rules <code>${esc(s.rules)}</code>
      · ${s.f == null ? "underdog adjustment off" : `underdog x ${num(s.x)} f ${num(s.f)}`}</p>
      ${whoWon(m, s)}<canvas id="chart" width="900" height="320"></canvas>`;
  }
  const publicValues = !s && !m.sealed && m.predictions.some((p) => p.prediction != null);
  if (publicValues) head += `<canvas id="chart" width="900" height="320"></canvas>`;
  if (m.sealed) {
    head += `<p><i>Predictions stay sealed until the reveal period closes
      (${when(m.reveal_until)}): only commitments are shown, never values.</i></p>`;
    view.innerHTML = head + table([["predictor"], ["commit block", "num"], ["commit time"],
      ["commitment"]], m.predictions.map((p) => `<tr>
      <td><a href="#/curator/${esc(p.predictor)}">${esc(p.predictor)}</a></td>
      <td class="num">${p.commit_block}</td><td class="nowrap">${when(p.commit_time)}</td>
      <td><code>${esc(p.commitment)}</code></td></tr>`));
    await mountDialog(m, d);
    return;
  }
  const rows = m.predictions.map((p) => `<tr>
    <td><a href="#/curator/${esc(p.predictor)}">${esc(p.predictor)}</a></td>
    <td class="num">${p.commit_block}</td>
    <td class="num">${m.sealed ? `<code>${esc(p.commitment.slice(0, 12))}…</code>` : milli(p.prediction)}</td>
    <td>${p.qualified == null ? "" : p.qualified ? "yes" : "no"}</td>
    <td class="num">${num(p.cp)}</td><td class="num">${num(p.rp)}</td>
    <td class="num">${p.sp == null ? "–" : milli(p.sp)}</td><td class="num">${num(p.ia)}</td>
    <td class="num">${milli(p.reward)}</td></tr>
    ${p.why ? `<tr><td></td><td colspan="8" class="why">${esc(p.why)}</td></tr>` : ""}`);
  view.innerHTML = head + table([["predictor"], ["block", "num"],
    [m.sealed ? "commitment" : "prediction", "num"], ["qualified"], ["CP", "num"], ["RP", "num"],
    ["SP", "num"], ["IA", "num"], ["reward", "num"]], rows);
  if (s || publicValues) {
    drawChart(document.getElementById("chart"), m.predictions, s ? s.final_payout : null, await unit());
  }
  await mountDialog(m, d);
}

async function mountDialog(m, d) {
  if (!window.curate) return;
  curate.onChange = route;
  try {
    await curate.mount(m, d);
  } catch (e) {
    document.getElementById("curate").innerHTML = `<p class="err">${esc(e.message)}</p>`;
  }
}

async function curatorView(name) {
  const [dr, own] = await Promise.allSettled([
    api(`/api/curators/${encodeURIComponent(name)}?limit=100`),
    api(`/api/curators/${encodeURIComponent(name)}/markets?limit=50`)]);
  if (dr.status === "rejected" && own.status === "rejected") throw dr.reason;
  const ownHtml = own.status === "fulfilled" ? ownMarkets(own.value) : "";
  if (dr.status === "rejected") {  // commits indexed, none settled yet: the own view only
    view.innerHTML = `<h2>Curator ${esc(name)}</h2>${ownHtml}`;
    bindOwn(name);
    return;
  }
  const d = dr.value;
  const rows = d.history.map((h) => `<tr>
    <td><a href="#/market/${esc(h.author)}/${esc(h.permlink)}">@${esc(h.author)}/${esc(h.permlink)}</a></td>
    <td class="num">${milli(h.prediction)}</td><td class="num">${milli(h.final_payout)}</td>
    <td>${h.qualified ? "yes" : "no"}</td><td class="num">${h.qualified ? `${h.r}/${h.n}` : "–"}</td>
    <td class="num">${h.qualified ? num(h.rp) : "–"}</td><td class="num">${milli(h.reward)}</td></tr>`);
  const rej = Object.entries(d.rejections.by_reason).map(([k, v]) =>
    `<tr><td>${esc(k)}</td><td class="num">${v}</td></tr>`);
  view.innerHTML = `<h2>Curator ${esc(d.curator)}</h2>${ownHtml}
    <h3>Record</h3>
    <p>earned <b>${milli(d.earned)}</b> · predictions ${d.predictions} · in band ${d.in_band}
    · rewarded ${d.rewarded} · open commits ${d.open_commits} · N ${d.n} · R ${d.r} · RP ${num(d.rp)}</p>
    <p class="why">Predictions, in band and rewarded count every settled prediction, as the
    leaderboard does. N and R count only those on posts paying at least the reputation minimum
    (R: those in the 90–100 % band); RP = ((R+1)/(N+1))³ is what this curator's next
    prediction in the band will be weighted with (spec §3). R/N and RP per row are the record a
    prediction in the band was weighted with. ${d.history.length} settled predictions below, newest first.</p>
    ${table([["market"], ["prediction", "num"], ["final", "num"], ["qualified"], ["R/N", "num"],
      ["RP", "num"], ["reward", "num"]], rows)}
    <h3>Rejected ops</h3>${rej.length ? table([["reason"], ["count", "num"]], rej) : "<p>none</p>"}
    ${d.rejections.latest.length ? table([["block", "num"], ["market"], ["reason"], ["detail"]],
      d.rejections.latest.map((r) => `<tr><td class="num">${r.position[0]}</td>
      <td>${r.author ? `<a href="#/market/${esc(r.author)}/${esc(r.permlink)}">@${esc(r.author)}/${esc(r.permlink)}</a>` : "–"}</td>
      <td>${esc(r.reason)}</td><td>${esc(r.detail)}</td></tr>`)) : ""}`;
  bindOwn(name);
}

// ---- the curator's own view (/api/curators/{name}/markets) merged with this browser's salts ----
// The API lists the open commitments and what is due by when, never a value; the salt stored
// in this browser (curate.js) adds the prediction and, for a due one, the "Reveal now" button.
function ownMarkets(d) {
  const local = (c) => (window.curate ? curate.stored(c) : null);
  const open = d.open.map((o) => {
    const e = local(o.commitment);
    const mine = e ? `${milli(Number(e.prediction))}${e.state === "revealed" ? " · <span class=\"ok\">revealed from this browser</span>" : ""}`
      : "<i>no salt in this browser</i>";
    const due = o.must_reveal && o.phase === "revealing" && !o.revealed;
    const act = due && e && e.state !== "revealed"
      ? `<button class="reveal-now primary" data-c="${esc(o.commitment)}">Reveal now</button>`
      : due && !e ? "<span class=\"why\">import the salt backup, or run <code>curator --auto-reveal</code></span>" : "";
    return `<tr data-c="${esc(o.commitment)}">
      <td><a href="#/market/${esc(o.author)}/${esc(o.permlink)}">@${esc(o.author)}/${esc(o.permlink)}</a></td>
      <td><span class="phase ${esc(o.phase)}">${esc(o.phase)}</span></td>
      <td class="nowrap">${when(o.committed_at)}</td><td><code>${esc(o.commitment.slice(0, 12))}…</code></td>
      <td class="nowrap">${when(o.reveal_from)} – ${when(o.reveal_until)}</td>
      <td class="todo">${esc(o.todo)}${o.revealed ? ` (block ${esc(o.reveal_block)})`
        : o.must_reveal && window.curate ? ` · ${o.seconds_left >= 0 ? `${curate.duration(o.seconds_left)} left` : ""}` : ""}</td>
      <td class="num">${mine}</td><td>${act}</td></tr>`;
  });
  const settled = d.settled.map((r) => `<tr>
    <td><a href="#/market/${esc(r.author)}/${esc(r.permlink)}">@${esc(r.author)}/${esc(r.permlink)}</a></td>
    <td class="num">${milli(r.prediction)}</td><td class="num">${milli(r.final_payout)}</td>
    <td class="num nowrap">${milli(r.band[0])}–${milli(r.band[1])}</td>
    <td>${r.qualified == null ? "" : r.qualified ? "yes" : "no"}</td>
    <td class="num">${num(r.cp)}</td><td class="num">${num(r.rp)}</td>
    <td class="num">${r.sp == null ? "–" : milli(r.sp)}</td><td class="num">${num(r.ia)}</td>
    <td class="num">${num(r.weight)}</td><td class="num">${milli(r.reward)}</td></tr>
    ${r.why ? `<tr><td></td><td colspan="10" class="why">${esc(r.why)}</td></tr>` : ""}`);
  const more = d.next_cursor ? "<p class=\"why\">older results: see the record below.</p>" : "";
  return `<section id="own" aria-label="own view">
    <h3>Open commitments <span id="to-reveal">${d.to_reveal} to reveal</span></h3>
    <p class="why">Chain time as of block ${esc(d.as_of_block)}. The server never shows a sealed
    value: "your prediction" comes from the salt stored in this browser.</p>
    ${open.length ? table([["market"], ["phase"], ["committed"], ["commitment"],
      ["reveal window"], ["to do"], ["your prediction", "num"], [""]], open) : "<p>none</p>"}
    <div id="own-key" hidden><label>posting key <input id="own-wif" type="password" autocomplete="off" size="52"></label>
    <button id="own-go" class="primary">Reveal</button> <span class="why">held in this page's memory only</span></div>
    <p id="own-status" role="status"></p>
    <h3>Settled results</h3>
    ${settled.length ? table([["market"], ["prediction", "num"], ["final", "num"], ["band", "num"],
      ["qualified"], ["CP", "num"], ["RP", "num"], ["SP", "num"], ["IA", "num"], ["weight", "num"],
      ["reward", "num"]], settled) : "<p>none yet</p>"}${more}</section>`;
}

function bindOwn(name) {
  const status = document.getElementById("own-status");
  const done = (msg, bad = false) => { status.textContent = msg; status.className = bad ? "err" : "ok"; };
  async function go(c, wif) {
    try {
      const sent = await curate.revealStored(c, wif);
      done(`revealed for ${name}: trx ${sent.trx_id || "(sent by Keychain)"}`);
      document.getElementById("own-key").hidden = true;
      const row = document.querySelector(`#own tr[data-c="${c}"] button.reveal-now`);
      if (row) row.replaceWith(Object.assign(document.createElement("span"),
        { className: "ok", textContent: "sent" }));
    } catch (err) { done(String(err.message || err), true); }
  }
  for (const b of document.querySelectorAll("#own button.reveal-now")) {
    b.onclick = async () => {
      if (await curate.needsKey(name)) {
        const box = document.getElementById("own-key");
        box.hidden = false;
        box.dataset.c = b.dataset.c;
        document.getElementById("own-go").onclick = () => go(box.dataset.c,
          document.getElementById("own-wif").value);
        return;
      }
      b.disabled = true;
      await go(b.dataset.c, null);
    };
  }
}

// ---- the forecast feed (/api/forecasts) and how far to trust it (/api/forecasts/quality) ----
async function forecastsView(params) {
  const q = new URLSearchParams(params);
  for (const k of ["rank", "n"]) q.delete(k);  // page-side: the first rank; quality's n
  if (!q.has("limit")) q.set("limit", "50");
  const first = Number(params.rank) || 1;
  const n = Number(params.n) || 50;
  const [d, qual] = await Promise.all([api(`/api/forecasts?${q}`),
    api(`/api/forecasts/quality?n=${n}`)]);
  const cur = d.currency || "";
  const rows = d.items.map((f, i) => `<tr data-post="${esc(f.author)}/${esc(f.permlink)}">
    <td class="num">${first + i}</td>
    <td><a href="#/market/${esc(f.author)}/${esc(f.permlink)}">@${esc(f.author)}/${esc(f.permlink)}</a></td>
    <td>${f.is_reply ? "<i>reply</i>" : esc(f.tag || "")}</td><td class="nowrap">${when(f.created)}</td>
    <td><span class="phase ${esc(f.phase)}">${esc(f.phase)}</span></td>
    <td class="num forecast"><b>${milli(f.forecast_milli)}</b></td>
    <td class="num">${f.predictions}</td><td class="num">${milli(f.sp)}</td>
    <td class="num">${milli(f.final_payout)}</td></tr>`);
  const rel = qual.median_rel_error == null ? "–" : `${(qual.median_rel_error * 100).toFixed(1)} %`;
  const quality = `<div class="won" id="quality"><b>How well past forecasts matched</b> over the
    last <span id="q-markets">${qual.markets}</span> settled market${qual.markets === 1 ? "" : "s"}
    with a forecast (asked: ${qual.n}):
    rank correlation (Spearman) <b id="q-spearman">${num(qual.spearman, 3)}</b> ·
    median error <b id="q-abs">${milli(qual.median_abs_error)}</b> ${esc(cur)} (<span id="q-rel">${rel}</span>) ·
    in the 90–100 % band <b id="q-band">${qual.within_band}</b>${qual.zero_payout ? ` · paid 0: ${qual.zero_payout}` : ""}
    <br><small>Spearman near 1: the feed ranks posts as they were paid. With few markets these
    figures say little. Markets still open or revealing are never in the feed (their predictions
    are sealed).</small></div>`;
  view.innerHTML = `<h2>Forecasts</h2>
    <p class="why">Each post's forecast payout: the SP-weighted median of its revealed predictions
    (${esc(cur)}), once its reveal period is over; highest first.</p>${quality}
    <form class="filters" id="f">phase <select name="phase"><option value="">closed and settled</option>
    ${["closed", "settled"].map((p) => `<option ${params.phase === p ? "selected" : ""}>${p}</option>`).join("")}</select>
    tag <input name="tag" size="12" value="${esc(params.tag || "")}">
    author <input name="author" size="12" value="${esc(params.author || "")}">
    quality over last <input name="n" size="4" value="${n}"> markets <button>filter</button></form>
    ${d.items.length ? "" : "<p>No forecast matches these filters.</p>"}
    ${table([["#", "num"], ["post"], ["tag"], ["created"], ["phase"], [`forecast (${cur})`, "num"],
      ["predictions", "num"], ["SP behind", "num"], ["final payout", "num"]], rows)}
    ${d.next_cursor ? `<a id="more" href="#/forecasts?${new URLSearchParams({ ...params,
      cursor: d.next_cursor, rank: first + d.items.length })}">next page →</a>` : ""}`;
  document.getElementById("f").onsubmit = (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(e.target)) if (v) p.set(k, v);
    location.hash = `#/forecasts?${p}`;
  };
}

async function leaderboardView(params) {
  const q = new URLSearchParams(params);
  q.delete("rank");  // page-side only: the rank the page starts at
  const first = Number(params.rank) || 1;
  const d = await api(`/api/leaderboard?${q}`);
  const rows = d.items.map((c, i) => `<tr><td class="num">${first + i}</td>
    <td><a href="#/curator/${esc(c.curator)}">${esc(c.curator)}</a></td>
    <td class="num">${milli(c.earned)}</td><td class="num">${c.predictions}</td>
    <td class="num">${c.in_band}</td><td class="num">${c.rewarded}</td></tr>`);
  const range = d.range.from || d.range.to
    ? `markets settled ${d.range.from ? `from ${when(d.range.from)}` : ""} ${d.range.to ? `to ${when(d.range.to)}` : ""}`
    : "all settled markets";
  view.innerHTML = `<h2>Leaderboard</h2>
    <form class="filters" id="f">settled from <input name="from" type="date" value="${esc(params.from || "")}">
    to <input name="to" type="date" value="${esc(params.to || "")}"> <button>show</button></form>
    <p class="why">Over ${range}: earned = sum of rewards; in band = predictions within 90–100 %
    of the final payout; rewarded = predictions paid more than 0.</p>` +
    table([["#", "num"], ["curator"], ["earned", "num"], ["predictions", "num"],
      ["in band", "num"], ["rewarded", "num"]], rows) + (d.next_cursor
      ? `<a id="more" href="#/leaderboard?${new URLSearchParams({ ...params, cursor: d.next_cursor,
        rank: first + d.items.length })}">next page →</a>` : "");
  document.getElementById("f").onsubmit = (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(e.target)) if (v) p.set(k, v);
    location.hash = `#/leaderboard?${p}`;
  };
}

// One view at a time: a hash change while a view is still loading waits for it, so a slow
// view can never overwrite the one asked for after it (each run reads the hash anew).
let routing = Promise.resolve();
function route() {
  routing = routing.then(renderRoute, renderRoute);
  return routing;
}

async function renderRoute() {
  const [path, query] = location.hash.slice(1).split("?");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  try {
    if (parts[0] === "market") await marketView(parts[1], parts[2]);
    else if (parts[0] === "curator") await curatorView(parts[1]);
    else if (parts[0] === "leaderboard") await leaderboardView(params);
    else if (parts[0] === "forecasts") await forecastsView(params);
    else await marketsView(params);
  } catch (e) {
    view.innerHTML = `<p class="err">${esc(e.message)}</p>`;
  }
  if (window.curate) curate.pending();
  document.body.dataset.ready = "1";
}

window.addEventListener("hashchange", route);
route();
