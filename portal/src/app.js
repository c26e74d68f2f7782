// The portal: hash routes, one page at a time, every string from i18n.js, every amount
// through formatFen, every instant in Asia/Shanghai. Bad input of any kind ends in a
// message on the page, never in a blank page.

import { STRINGS, getLang, setLang, t } from './i18n.js';
import { fenToYuanNumber, fenToYuanText, formatBp, formatDate, formatFen, formatTime, monthOf, sumFen } from './format.js';
import { api, config, ledgerBase } from './api.js';
import { barChart, disposeCharts, resizeCharts } from './charts.js';
import { b64encode, utf8 } from './core/bytes.js';
import { decodeEntry, hashFromBase64, leafHash, nodeHash, parseReceipt, parseVkey, verifyInclusion } from './core/ledger.js';
import { checkGrowth, checkSizes } from './core/verify.js';
import { donationOf, donorCommitment, parseReceiptLink } from './core/donor.js';
import { currentCheckpoint, fetchEntry, levelZeroLeaves, verifyDonorReceipt } from './core/receipt.js';
import { checkPolicy, parsePolicy } from './core/witness.js';
import { ledgerReader } from './core/fetch.js';
import { traceDifference, traceFromJson } from './core/trace.js';
import { goodsRows, traceLine, traceRows } from './traceview.js';

const PAGE_SIZE = 20;
const CHANNELS = ['space_for_service', 'neighbourhood_market', 'micro_workshop', 'direct'];
const SEEN_KEY = 'fundtrail.seen.v1';
const LANG_KEY = 'fundtrail.lang';

// ---------------------------------------------------------------------------------
// DOM helpers (text only: no HTML from data ever reaches innerHTML)

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const main = () => document.getElementById('main');

function render(...nodes) {
  disposeCharts();
  const m = main();
  m.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  m.setAttribute('aria-busy', 'false');
}

function loading() {
  disposeCharts();
  main().replaceChildren(h('p', { class: 'loading', role: 'status' }, t('loading')));
  main().setAttribute('aria-busy', 'true');
}

function errorBox(message) {
  return h('div', { class: 'error', role: 'alert' }, h('h2', {}, t('error.title')), h('p', { class: 'error-detail' }, message),
    h('p', {}, h('a', { href: '#/' }, t('error.back'))));
}

function apiErrorMessage(e, what) {
  if (e && e.name === 'ApiError') return t('error.network', { what, detail: e.message });
  return t('error.network', { what, detail: e && e.message ? e.message : String(e) });
}

const entryHref = (index) => `#/entry/${index}`;
const channelName = (c) => (STRINGS[`channel.${c}`] ? t(`channel.${c}`) : String(c));
const shortHex = (s) => (typeof s === 'string' && s.length > 16 ? `${s.slice(0, 8)}…${s.slice(-4)}` : String(s));

function table(caption, headers, rows, attrs = {}) {
  return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
    h('table', attrs, h('caption', {}, caption), h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', {}, c))))))));
}

function figures(items) {
  return h('dl', { class: 'figures' }, items.map(([label, value, cls]) => h('div', { class: `figure ${cls || ''}` }, h('dt', {}, label), h('dd', {}, value))));
}

// ---------------------------------------------------------------------------------
// The ledger, read and verified once per page load, for timelines and disclosures

let scanPromise = null;

/** Runs the whole-ledger verification in a Web Worker; resolves with its final message. */
function runWorker({ collect = false, previous = null, trace = null, traceAt = null, onProgress = () => {} } = {}) {
  return new Promise((resolve) => {
    let worker;
    try {
      worker = new Worker(new URL('worker.js', document.baseURI).href, { type: 'module' });
    } catch (e) {
      resolve({ type: 'failed', message: e.message, index: null });
      return;
    }
    worker.onmessage = (m) => {
      if (m.data.type === 'progress') onProgress(m.data);
      else {
        worker.terminate();
        resolve(m.data);
      }
    };
    worker.onerror = (e) => {
      worker.terminate();
      resolve({ type: 'failed', message: e.message || 'the verification worker failed', index: null });
    };
    worker.postMessage({ base: ledgerBase(), vkey: config.vkey, previous, collect, trace, traceAt });
  });
}

function ledgerEvents() {
  if (!scanPromise) {
    scanPromise = runWorker({ collect: true }).then((r) => {
      if (r.type !== 'done') {
        scanPromise = null;
        throw new Error(t('verify.fail', { detail: r.message }));
      }
      return r.events;
    });
  }
  return scanPromise;
}

let keyLabels = null;
async function labels() {
  if (!keyLabels) {
    try {
      keyLabels = new Map((await api.keys()).map((k) => [k.key, k.label]));
    } catch {
      keyLabels = new Map();
    }
  }
  return keyLabels;
}

function signedEntry(e, labelOf) {
  return h('details', { class: 'signed' }, h('summary', {}, t('signed.show'), ' · ', t('signed.index', { index: e.index })),
    h('ul', {},
      h('li', {}, t('signed.by', { label: labelOf(e.keyid) || '—', key: e.keyid })),
      h('li', {}, t('signed.at', { time: formatTime(e.event.occurred_at) })),
      h('li', {}, t('signed.index', { index: e.index })),
      h('li', {}, t('signed.signature'), ': ', h('code', { class: 'sig' }, e.signature))));
}

// ---------------------------------------------------------------------------------
// Pages

async function fundsPage() {
  loading();
  let funds;
  try {
    funds = await api.funds();
  } catch (e) {
    render(errorBox(apiErrorMessage(e, t('funds.title'))));
    return;
  }
  if (funds.length === 1 && location.hash === '') {
    location.replace(`#/funds/${encodeURIComponent(funds[0].fund)}`);
    return;
  }
  render(h('h1', {}, t('funds.title')), funds.length === 0 ? h('p', {}, t('funds.none'))
    : h('ul', { class: 'cards' }, funds.map((f) => h('li', { class: 'card' },
      h('h2', {}, h('a', { href: `#/funds/${encodeURIComponent(f.fund)}` }, f.name)),
      h('p', {}, t('funds.opened', { community: f.community, date: formatDate(f.opened_at) })),
      figures([[t('cash.received'), formatFen(f.cash.received_fen)], [t('cash.available'), formatFen(f.cash.available_fen)]])))));
}

function fundNav(fund, view, active) {
  const tab = (key, path) => h('a', { href: `#/funds/${encodeURIComponent(fund)}${path}`, 'aria-current': active === key ? 'page' : null }, t(`fund.${key}`));
  return [h('h1', {}, view ? view.name : fund), view ? h('p', { class: 'sub' }, t('funds.opened', { community: view.community, date: formatDate(view.opened_at) })) : null,
    h('nav', { class: 'tabs', 'aria-label': t('fund.tabs') }, tab('overview', ''), tab('trail', '/trail'), tab('proposals', '/proposals'), tab('disclosures', '/disclosures'))];
}

async function loadFund(fund) {
  try {
    return await api.fund(fund);
  } catch (e) {
    if (e.status === 404 || e.status === 400) render(errorBox(t('error.unknown_fund', { fund })));
    else render(errorBox(apiErrorMessage(e, fund)));
    return null;
  }
}

/** A channel's totals, whichever field names the API uses (`received` or `received_fen`). */
function channelTotals(view, channel) {
  const c = (view.by_channel || view.by_channel_fen || {})[channel] || {};
  const pick = (name) => c[`${name}_fen`] ?? c[name] ?? 0;
  return { received: pick('received'), refunded: pick('refunded'), goods: pick('goods_value'), pledged: pick('pledged'), donations: c.donations ?? 0 };
}

async function overviewPage(fund) {
  loading();
  const view = await loadFund(fund);
  if (!view) return;
  let donations, proposals;
  try {
    [donations, proposals] = await Promise.all([api.donations(fund), api.proposals(fund)]);
  } catch (e) {
    render(...fundNav(fund, view, 'overview'), errorBox(apiErrorMessage(e, fund)));
    return;
  }
  const cash = view.cash;
  const monthly = monthlyFlows(donations, proposals);
  const channelChart = h('div', { class: 'chart', id: 'chart-channels' });
  const monthChart = h('div', { class: 'chart', id: 'chart-monthly' });
  const pledges = view.pledges || [];
  render(
    ...fundNav(fund, view, 'overview'),
    h('section', { 'aria-labelledby': 'cash-h' }, h('h2', { id: 'cash-h' }, t('cash.title')),
      figures([
        [t('cash.received'), formatFen(cash.received_fen), 'received'],
        [t('cash.refunded'), formatFen(cash.refunded_fen), 'refunded'],
        [t('cash.reserved'), formatFen(cash.reserved_fen), 'reserved'],
        [t('cash.paid'), formatFen(cash.paid_fen), 'paid'],
        [t('cash.available'), formatFen(cash.available_fen), 'available'],
      ])),
    h('section', { 'aria-labelledby': 'ch-h' }, h('h2', { id: 'ch-h' }, t('channels.title')), channelChart,
      table(t('channels.title'), [t('col.channel'), t('channels.cash'), t('channels.goods'), t('channels.gifts')],
        CHANNELS.map((c) => {
          const x = channelTotals(view, c);
          return [channelName(c), formatFen(x.received), formatFen(x.goods), String(x.donations)];
        }), { class: 'channels' })),
    h('section', { 'aria-labelledby': 'mo-h' }, h('h2', { id: 'mo-h' }, t('monthly.title')), monthChart,
      table(t('monthly.title'), [t('trail.month'), t('monthly.income'), t('monthly.payouts')],
        monthly.months.map((m, i) => [m, formatFen(monthly.income[i]), formatFen(monthly.payouts[i])]), { class: 'monthly' })),
    h('section', { 'aria-labelledby': 'pl-h' }, h('h2', { id: 'pl-h' }, t('pledges.title')),
      pledges.length === 0 ? h('p', {}, t('pledges.none')) : [
        h('p', {}, t('pledges.total', { pledged: formatFen(view.pledged_fen), received: formatFen(view.pledged_received_fen) })),
        table(t('pledges.title'), [t('pledges.partner'), t('col.channel'), t('pledges.pledged'), t('pledges.given'), t('pledges.goods'), t('pledges.terms')],
          pledges.map((p) => [p.pledge, channelName(p.channel), formatFen(p.pledged_fen), formatFen(p.received_fen), formatFen(p.goods_value_fen), p.terms]), { class: 'pledges' }),
      ]),
    h('section', { 'aria-labelledby': 'go-h' }, h('h2', { id: 'go-h' }, t('goods.title')),
      h('p', {}, t('goods.totals', { received: formatFen(view.goods_received_value_fen), distributed: formatFen(view.goods_distributed_value_fen) })),
      (view.goods || []).length === 0 ? h('p', {}, t('goods.none'))
        : table(t('goods.title'), [t('goods.name'), t('goods.on_hand'), t('goods.received'), t('goods.value')],
          view.goods.map((g) => [g.name, `${g.on_hand} ${g.unit}`, `${g.received} ${g.unit}`, formatFen(g.value_on_hand_fen)]), { class: 'goods' })),
    h('section', { 'aria-labelledby': 'co-h' }, h('h2', { id: 'co-h' }, t('committee.title')),
      (view.committee || []).length === 0 ? h('p', {}, t('committee.none'))
        : h('ul', { class: 'committee' }, view.committee.map((m) => h('li', {}, m.label, ' ', h('code', {}, shortHex(m.key)))))),
  );
  barChart(channelChart, {
    categories: CHANNELS.map(channelName),
    series: [
      { name: t('channels.cash'), values: CHANNELS.map((c) => fenToYuanNumber(channelTotals(view, c).received)), labels: CHANNELS.map((c) => formatFen(channelTotals(view, c).received)) },
      { name: t('channels.goods'), values: CHANNELS.map((c) => fenToYuanNumber(channelTotals(view, c).goods)), labels: CHANNELS.map((c) => formatFen(channelTotals(view, c).goods)) },
    ],
    description: t('channels.aria') + CHANNELS.map((c) => `${channelName(c)} ${formatFen(channelTotals(view, c).received)}`).join('；'),
  });
  barChart(monthChart, {
    categories: monthly.months,
    series: [
      { name: t('monthly.income'), values: monthly.income.map(fenToYuanNumber), labels: monthly.income.map(formatFen) },
      { name: t('monthly.payouts'), values: monthly.payouts.map(fenToYuanNumber), labels: monthly.payouts.map(formatFen) },
    ],
    colors: ['#2f6f4f', '#b4282d'],
    description: t('monthly.aria') + monthly.months.map((m, i) => `${m}: ${formatFen(monthly.income[i])} / ${formatFen(monthly.payouts[i])}`).join('；'),
  });
}

/** The event type of a donation view ("cash"/"goods", or already an event type). */
const donationKind = (d) => (d.kind === 'goods' || d.kind === 'goods.received' ? 'goods.received' : 'donation.received');

/** Cash income (cash donations as received) and payouts per month, in Asia/Shanghai months. */
function monthlyFlows(donations, proposals) {
  const income = new Map(), payouts = new Map();
  for (const d of donations) {
    if (donationKind(d) !== 'donation.received') continue;
    const m = monthOf(d.occurred_at);
    income.set(m, (income.get(m) || 0n) + BigInt(d.amount_fen));
  }
  for (const p of proposals) {
    for (const pay of p.payouts || []) {
      const m = monthOf(pay.paid_at);
      payouts.set(m, (payouts.get(m) || 0n) + BigInt(pay.amount));
    }
  }
  const months = [...new Set([...income.keys(), ...payouts.keys()])].sort();
  return { months, income: months.map((m) => income.get(m) || 0n), payouts: months.map((m) => payouts.get(m) || 0n) };
}

/** The rows of the money trail: donations and payouts, newest last. */
function trailRows(donations, proposals) {
  const rows = donations.map((d) => ({
    date: d.occurred_at, kind: donationKind(d), channel: d.channel, donor: d.donor, amount: BigInt(d.amount_fen),
    index: d.ledger_index, month: monthOf(d.occurred_at), what: d.donor,
  }));
  for (const p of proposals) {
    for (const pay of p.payouts || []) {
      const trail = (p.money_trail || []).find((s) => s.event === pay.event);
      rows.push({ date: pay.paid_at, kind: 'payout.made', channel: null, amount: BigInt(pay.amount), index: trail ? trail.ledger_index : null,
        month: monthOf(pay.paid_at), what: `${p.proposal} ${p.payee}`, proposal: p.proposal });
    }
  }
  rows.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  return rows;
}

function csvOf(rows) {
  const cell = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const header = [t('col.date'), t('col.kind'), t('col.channel'), t('col.donor'), t('col.amount'), t('col.index')];
  const lines = [header, ...rows.map((r) => [formatTime(r.date), t(`kind.${r.kind}`), r.channel ? channelName(r.channel) : '', r.what, fenToYuanText(r.amount), r.index ?? ''])];
  return `\uFEFF${lines.map((l) => l.map(cell).join(',')).join('\r\n')}\r\n`;
}

async function trailPage(fund, query) {
  loading();
  const view = await loadFund(fund);
  if (!view) return;
  let rows;
  try {
    const [donations, proposals] = await Promise.all([api.donations(fund), api.proposals(fund)]);
    rows = trailRows(donations, proposals);
  } catch (e) {
    render(...fundNav(fund, view, 'trail'), errorBox(apiErrorMessage(e, fund)));
    return;
  }
  const months = [...new Set(rows.map((r) => r.month))].sort();
  const state = { channel: query.get('channel') || '', month: query.get('month') || '', page: Math.max(0, Number.parseInt(query.get('page') || '0', 10) || 0) };
  const out = h('div', { id: 'trail-rows' });
  const channelSelect = h('select', { id: 'f-channel', name: 'channel' }, h('option', { value: '' }, t('channel.all')),
    h('option', { value: 'payout' }, t('trail.payouts')), CHANNELS.map((c) => h('option', { value: c }, channelName(c))));
  const monthSelect = h('select', { id: 'f-month', name: 'month' }, h('option', { value: '' }, t('trail.all_months')), months.map((m) => h('option', { value: m }, m)));
  channelSelect.value = state.channel;
  monthSelect.value = state.month;
  const filtered = () => rows.filter((r) => (!state.channel || (state.channel === 'payout' ? r.kind === 'payout.made' : r.channel === state.channel))
    && (!state.month || r.month === state.month));
  const draw = () => {
    const all = filtered();
    const pages = Math.max(1, Math.ceil(all.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    const shown = all.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
    const csvLink = h('a', { class: 'button', download: `${fund}-trail${state.channel ? `-${state.channel}` : ''}${state.month ? `-${state.month}` : ''}-p${state.page + 1}.csv`,
      href: URL.createObjectURL(new Blob([csvOf(shown)], { type: 'text/csv;charset=utf-8' })) }, t('trail.csv', { n: shown.length }));
    out.replaceChildren(
      shown.length === 0 ? h('p', {}, t('trail.none')) : table(t('trail.title'), [t('col.date'), t('col.kind'), t('col.channel'), t('col.donor'), t('col.amount'), t('col.entry')],
        shown.map((r) => [formatDate(r.date), t(`kind.${r.kind}`), r.channel ? channelName(r.channel) : '—',
          r.proposal ? h('a', { href: `#/funds/${encodeURIComponent(fund)}/proposals/${encodeURIComponent(r.proposal)}` }, r.what) : h('code', { title: r.what }, shortHex(r.what)),
          h('span', { class: 'amount' }, formatFen(r.amount)),
          r.index === null ? '—' : h('a', { href: entryHref(r.index) }, t('entry.link', { index: r.index }))]), { class: 'trail' }),
      h('p', { class: 'pager', role: 'status' }, t('trail.shown', { from: all.length ? state.page * PAGE_SIZE + 1 : 0, to: state.page * PAGE_SIZE + shown.length, n: all.length })),
      h('div', { class: 'pager-buttons' },
        h('button', { type: 'button', disabled: state.page === 0, onclick: () => { state.page--; sync(); } }, t('trail.prev')),
        h('button', { type: 'button', disabled: state.page >= pages - 1, onclick: () => { state.page++; sync(); } }, t('trail.next')),
        csvLink));
  };
  const sync = () => {
    const q = new URLSearchParams();
    if (state.channel) q.set('channel', state.channel);
    if (state.month) q.set('month', state.month);
    if (state.page) q.set('page', String(state.page));
    const hash = `#/funds/${encodeURIComponent(fund)}/trail${q.toString() ? `?${q}` : ''}`;
    history.replaceState(null, '', hash);
    draw();
  };
  channelSelect.addEventListener('change', () => { state.channel = channelSelect.value; state.page = 0; sync(); });
  monthSelect.addEventListener('change', () => { state.month = monthSelect.value; state.page = 0; sync(); });
  render(...fundNav(fund, view, 'trail'), h('h2', {}, t('trail.title')),
    h('form', { class: 'filters', 'aria-label': t('trail.filter'), onsubmit: (e) => e.preventDefault() },
      h('label', { for: 'f-channel' }, t('trail.channel')), channelSelect, h('label', { for: 'f-month' }, t('trail.month')), monthSelect),
    out);
  draw();
}

async function proposalsPage(fund) {
  loading();
  const view = await loadFund(fund);
  if (!view) return;
  let proposals;
  try {
    proposals = await api.proposals(fund);
  } catch (e) {
    render(...fundNav(fund, view, 'proposals'), errorBox(apiErrorMessage(e, fund)));
    return;
  }
  render(...fundNav(fund, view, 'proposals'), h('h2', {}, t('proposals.title')),
    proposals.length === 0 ? h('p', {}, t('proposals.none')) : h('ul', { class: 'cards proposals' }, proposals.map((p) => h('li', { class: 'card' },
      h('h3', {}, h('a', { href: `#/funds/${encodeURIComponent(fund)}/proposals/${encodeURIComponent(p.proposal)}` }, `${p.proposal} ${p.title}`)),
      h('p', {}, h('span', { class: `status status-${p.status}` }, t(`status.${p.status}`)), ' · ', t('proposal.requested', { amount: formatFen(p.requested_fen) })),
      h('p', {}, t('proposal.paid', { paid: formatFen(p.paid_fen), approved: formatFen(p.approved_fen) }))))));
}

function stepText(e, labelOf) {
  const b = e.event.body || {};
  const type = e.event.type;
  switch (type) {
    case 'proposal.submitted': return t('step.proposal.submitted', { title: b.title, amount: formatFen(b.amount_fen), payee: b.payee });
    case 'opinion.recorded': return t('step.opinion.recorded', { summary: b.summary, support: b.support, oppose: b.oppose });
    case 'vote.cast': return t('step.vote.cast', { label: labelOf(e.keyid) || shortHex(e.keyid), choice: t(`vote.${b.choice}`), reason: b.reason ? t('vote.reason', { reason: b.reason }) : '' });
    case 'proposal.approved': return t('step.proposal.approved', { amount: formatFen(b.amount_fen) });
    case 'payout.made': return t('step.payout.made', { amount: formatFen(b.amount_fen), ref: b.payment_ref });
    case 'proposal.closed': return t('step.proposal.closed', { report: b.report, released: '{released}' });
    default: return STRINGS[`step.${type}`] ? t(`step.${type}`, { reason: b.reason, purpose: b.purpose }) : type;
  }
}

async function proposalPage(fund, id) {
  loading();
  const view = await loadFund(fund);
  if (!view) return;
  let p;
  try {
    p = await api.proposal(fund, id);
  } catch (e) {
    render(...fundNav(fund, view, 'proposals'), errorBox(e.status === 404 || e.status === 400 ? t('error.unknown_proposal', { id }) : apiErrorMessage(e, id)));
    return;
  }
  const timeline = h('ol', { class: 'timeline', 'aria-busy': 'true' }, h('li', { role: 'status' }, t('timeline.loading')));
  const tally = p.tally || {};
  render(...fundNav(fund, view, 'proposals'),
    h('h2', {}, `${p.proposal} ${p.title}`),
    h('p', {}, h('span', { class: `status status-${p.status}` }, t(`status.${p.status}`)), ' · ', p.payee),
    figures([[t('proposal.requested', { amount: '' }).trim(), formatFen(p.requested_fen)], [t('cash.reserved'), formatFen(p.remainder_fen ?? 0)],
      [t('cash.paid'), formatFen(p.paid_fen)], [t('status.closed'), formatFen(p.released_fen)]]),
    h('p', {}, t('tally', { a: tally.approvals ?? 0, r: tally.rejections ?? 0, c: tally.recusals ?? 0, p: tally.pending ?? 0, n: tally.needed ?? 0 })),
    h('h3', {}, t('timeline.title')), timeline);
  try {
    const [events, labelMap] = await Promise.all([ledgerEvents(), labels()]);
    const labelOf = (k) => labelMap.get(k);
    const steps = events.filter((e) => e.event.fund === fund && e.event.body && e.event.body.proposal === id);
    timeline.replaceChildren(...steps.map((e) => h('li', { class: `step step-${e.event.type.replace(/\./g, '-')}` },
      h('p', { class: 'when' }, formatTime(e.event.occurred_at)),
      h('p', { class: 'what' }, stepText(e, labelOf).replace('{released}', formatFen(p.released_fen))),
      signedEntry(e, labelOf))));
    timeline.setAttribute('aria-busy', 'false');
  } catch (e) {
    timeline.replaceChildren(h('li', { class: 'error', role: 'alert' }, e.message));
  }
}

async function disclosuresPage(fund) {
  loading();
  const view = await loadFund(fund);
  if (!view) return;
  const c = view.compliance || {};
  const due = c.disclosures_due || [];
  const ratios = c.cost_ratios || {};
  const ratioRow = (r) => r && [String(r.year), formatFen(r.last_year_income_fen), formatFen(r.charity_spending_fen), formatFen(r.management_spending_fen),
    r.charity_bp === null ? t('ratios.na') : `${formatBp(r.charity_bp)} (${t(r.charity_at_risk ? 'ratios.at_risk' : 'ratios.ok')})`,
    r.management_bp === null ? t('ratios.na') : `${formatBp(r.management_bp)} (${t(r.management_at_risk ? 'ratios.at_risk' : 'ratios.ok')})`];
  const published = h('div', { id: 'published' }, h('p', { role: 'status' }, t('timeline.loading')));
  const annual = c.annual_report;
  render(...fundNav(fund, view, 'disclosures'),
    h('h2', {}, t('disclosures.title')),
    c.as_of ? h('p', { class: 'sub' }, t('disclosures.as_of', { time: formatTime(c.as_of) })) : null,
    h('button', { type: 'button', class: 'print-button', onclick: () => window.print() }, t('print')),
    h('section', {}, h('h3', {}, t('disclosures.published')), published),
    h('section', {}, h('h3', {}, t('disclosures.due')), due.length === 0 ? h('p', {}, t('disclosures.due.none'))
      : h('ul', { class: 'due' }, due.map((d) => h('li', { class: d.overdue ? 'overdue' : '' },
        t('disclosures.due.item', { proposal: d.proposal, kind: t(`disclosures.kind.${d.kind}`), due: formatDate(d.due) }), ' — ',
        h('strong', {}, t(d.overdue ? 'disclosures.overdue' : 'disclosures.on_time')))))),
    h('section', {}, h('h3', {}, t('annual.title')), annual ? h('p', { class: annual.late ? 'overdue' : '' },
      t('annual.status', { year: annual.year, due: formatDate(annual.due), state: t(annual.late ? 'annual.late' : 'annual.ok') })) : null),
    h('section', {}, h('h3', {}, t('ratios.title')), h('p', { class: 'explain' }, t('ratios.explain')),
      table(t('ratios.title'), [t('ratios.year'), t('ratios.last_income'), t('ratios.charity'), t('ratios.management'), t('ratios.charity_bp'), t('ratios.management_bp')],
        [ratioRow(ratios.current_year), ratioRow(ratios.last_year)].filter(Boolean), { class: 'ratios' })));
  try {
    const [events, labelMap] = await Promise.all([ledgerEvents(), labels()]);
    const found = events.filter((e) => e.event.fund === fund && (e.event.type === 'disclosure.published' || e.event.type === 'annual_report.published'));
    const disclosures = found.filter((e) => e.event.type === 'disclosure.published');
    const years = found.filter((e) => e.event.type === 'annual_report.published').map((e) => e.event.body.year);
    published.replaceChildren(
      disclosures.length === 0 ? h('p', {}, t('disclosures.none')) : h('ol', { class: 'disclosures' }, disclosures.map((e) => {
        const b = e.event.body;
        const tt = b.totals || {};
        return h('li', { class: 'disclosure' },
          h('h4', {}, `${formatDate(b.period_start)} – ${formatDate(b.period_end)}`),
          h('p', {}, t('disclosures.published_at'), ' ', formatDate(e.event.occurred_at)),
          figures([[t('cash.received'), formatFen(tt.received_fen)], [t('cash.refunded'), formatFen(tt.refunded_fen)], [t('cash.reserved'), formatFen(tt.reserved_fen)],
            [t('cash.paid'), formatFen(tt.paid_fen)], [t('cash.available'), formatFen(tt.available_fen)], [t('channels.goods'), formatFen(tt.goods_received_value_fen)]]),
          b.accounts ? citedAccounts(b.accounts) : null,
          h('p', {}, t('disclosures.report'), ': ', h('code', {}, shortHex(b.report))),
          signedEntry(e, (k) => labelMap.get(k)));
      })),
      years.length ? h('p', {}, t('annual.published', { years: years.join(', ') })) : '');
  } catch (e) {
    published.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

/**
 * The accounts a version 2 disclosure cites (docs/design.md §1.6, "What a disclosure
 * cites"): the verified replay accepted it, so each figure is the fund's at that entry.
 */
function citedAccounts(a) {
  const byPurpose = (key, map) => Object.entries(map || {}).map(([purpose, fen]) => [t(key, { purpose }), formatFen(fen)]);
  return h('section', { class: 'cited-accounts' }, h('h5', {}, t('disclosures.accounts', { year: a.year })),
    figures([
      [t('disclosures.income_unrestricted'), formatFen(a.income_unrestricted_fen)],
      [t('disclosures.income_restricted'), formatFen(a.income_restricted_fen)],
      [t('disclosures.spending_unrestricted'), formatFen(a.spending_unrestricted_fen)],
      ...byPurpose('disclosures.spending_restricted', a.spending_restricted),
      [t('disclosures.net_unrestricted'), formatFen(a.net_assets_unrestricted_fen)],
      ...byPurpose('disclosures.net_restricted', a.net_assets_restricted),
    ]));
}

// ---------------------------------------------------------------------------------
// My donation

/**
 * The pinned witness policy's verdict on a signed checkpoint note: {state: 'ok'|'fail'|
 * 'skip', text}. Without a policy the ledger is not witnessed: said, not an error.
 */
async function witnessVerdict(note) {
  if (!config.witnessPolicy) return { state: 'skip', text: t('witness.none') };
  let policy;
  try {
    policy = parsePolicy(config.witnessPolicy);
  } catch (e) {
    return { state: 'fail', text: t('witness.bad_policy', { detail: e.message }) };
  }
  try {
    const r = await checkPolicy(note, policy);
    const by = r.cosigned_by.map((c) => c.witness).join(', ') || t('witness.nobody');
    return { state: 'ok', text: r.missing.length ? t('witness.ok_missing', { by, missing: r.missing.join(', '), quorum: r.quorum }) : t('witness.ok', { by, quorum: r.quorum }) };
  } catch (e) {
    return { state: 'fail', text: t('witness.fail', { detail: e.message }) };
  }
}

function checkList() {
  const list = h('ol', { class: 'checks', 'aria-live': 'polite' });
  const items = new Map();
  return {
    el: list,
    set(key, state, detail = '') {
      let li = items.get(key);
      if (!li) {
        li = h('li', {});
        items.set(key, li);
        list.append(li);
      }
      li.className = `check ${state}`;
      li.dataset.check = key;
      li.replaceChildren(...[h('span', { class: 'mark', 'aria-hidden': 'true' }, t(state === 'ok' ? 'my.ok' : state === 'fail' ? 'my.fail' : 'my.pending')),
        h('span', { class: 'label' }, t(`my.check.${key}`)), detail ? h('span', { class: 'detail' }, detail) : null,
        h('span', { class: 'sr-only' }, state)].filter(Boolean));
    },
  };
}

function loadSeen(origin) {
  try {
    const all = JSON.parse(localStorage.getItem(SEEN_KEY) || '{}');
    const s = all[origin];
    return s ? { origin, size: BigInt(s.size), root: hashFromBase64(s.root) } : null;
  } catch {
    return null;
  }
}

function saveSeen(checkpoint) {
  try {
    const all = JSON.parse(localStorage.getItem(SEEN_KEY) || '{}');
    const old = all[checkpoint.origin];
    if (!old || BigInt(old.size) <= checkpoint.size) {
      all[checkpoint.origin] = { size: String(checkpoint.size), root: b64encode(checkpoint.root) };
      localStorage.setItem(SEEN_KEY, JSON.stringify(all));
    }
  } catch {
    // private mode: nothing remembered
  }
}

/** The inclusion proof of leaf `index` in the tree of `leaves` (RFC 9162 §2.1.3.1). */
function inclusionProof(leaves, index) {
  const path = (lo, hi, i) => {
    const n = hi - lo;
    if (n === 1) return [];
    let k = 1;
    while (k * 2 < n) k *= 2;
    const root = (a, b) => {
      let level = leaves.slice(a, b);
      while (level.length > 1) {
        const next = [];
        for (let j = 0; j + 1 < level.length; j += 2) next.push(nodeHash(level[j], level[j + 1]));
        if (level.length % 2) next.push(level[level.length - 1]);
        level = next;
      }
      return level[0];
    };
    return i < lo + k ? [...path(lo, lo + k, i), root(lo + k, hi)] : [...path(lo + k, hi, i), root(lo, lo + k)];
  };
  return path(0, leaves.length, index);
}

async function myPage(parts) {
  disposeCharts();
  let log;
  try {
    log = parseVkey(config.vkey);
  } catch (e) {
    render(h('h1', {}, t('my.title')), errorBox(e.message));
    return;
  }
  const linkInput = h('input', { id: 'my-link', name: 'link', type: 'url', inputmode: 'url', autocomplete: 'off' });
  const fileInput = h('input', { id: 'my-file', name: 'file', type: 'file', accept: '.tlog-proof,text/plain' });
  const refInput = h('input', { id: 'my-ref', name: 'reference', type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const result = h('div', { id: 'my-result' });
  const form = h('form', { class: 'my-form', onsubmit: async (e) => {
    e.preventDefault();
    const file = fileInput.files && fileInput.files[0];
    if (file) {
      const bytes = new Uint8Array(await file.arrayBuffer());
      await checkDonation(result, log, { receipt: bytes, reference: refInput.value || null });
      return;
    }
    const link = linkInput.value.trim();
    if (!link) {
      result.replaceChildren(h('p', { class: 'error', role: 'alert' }, t('my.empty')));
      return;
    }
    const at = link.indexOf('#/my/');
    const path = at >= 0 ? link.slice(at + 5) : link;
    await checkDonation(result, log, { linkParts: path.split('/'), reference: refInput.value || null });
  } },
  h('label', { for: 'my-link' }, t('my.link')), linkInput,
  h('label', { for: 'my-file' }, t('my.file')), fileInput,
  h('label', { for: 'my-ref' }, t('my.reference')), refInput,
  h('button', { type: 'submit' }, t('my.check')));
  render(h('h1', {}, t('my.title')), h('p', {}, t('my.intro')),
    h('p', { class: 'vkey' }, t('my.key'), ': ', h('code', { id: 'pinned-key' }, config.vkey)), form, result);
  if (parts.length) {
    linkInput.value = location.href;
    const refFromLink = parts.length >= 3 ? null : (refInput.value || null);
    await checkDonation(result, log, { linkParts: parts, reference: refFromLink });
  }
}

/** Every check of a donor's gift, each shown ✓ or with the exact reason it failed. */
async function checkDonation(out, log, { linkParts = null, receipt = null, reference = null }) {
  const checks = checkList();
  const after = h('div', { id: 'my-after' });
  out.replaceChildren(h('h2', {}, t('my.checks')), checks.el, after);
  const read = ledgerReader(ledgerBase());
  let index, salt = null, receiptCheckpoint = null;
  try {
    if (linkParts) {
      let link;
      try {
        link = parseReceiptLink(linkParts);
      } catch (e) {
        checks.set('link', 'fail', t('my.bad_link', { detail: e.message }));
        return;
      }
      checks.set('link', 'ok');
      index = link.index;
      salt = link.salt;
      if (link.reference !== null) reference = link.reference;
    } else {
      let parsed;
      try {
        parsed = parseReceipt(receipt);
      } catch (e) {
        checks.set('receipt', 'fail', t('my.bad_file', { detail: e.message }));
        return;
      }
      checks.set('receipt', 'ok');
      index = parsed.index;
    }
    // The ledger's checkpoint now, signed by the pinned key.
    let now;
    try {
      now = await currentCheckpoint(read, log);
      if (!receipt) checks.set('checkpoint', 'ok', `${now.origin} · ${now.size} · ${b64encode(now.root)}`);
    } catch (e) {
      checks.set('checkpoint', 'fail', e.message);
      return;
    }
    let entry;
    try {
      entry = await fetchEntry(read, now, index);
    } catch (e) {
      checks.set('inclusion', 'fail', e.message);
      return;
    }
    if (receipt) {
      try {
        const verified = await verifyDonorReceipt({ receipt, entry, reference: null }, log);
        receiptCheckpoint = verified.checkpoint;
        salt = verified.salt;
        checks.set('checkpoint', 'ok', `${receiptCheckpoint.origin} · ${receiptCheckpoint.size} · ${b64encode(receiptCheckpoint.root)}`);
        checks.set('inclusion', 'ok', `#${index}`);
      } catch (e) {
        const which = /signed note|checkpoint|origin/.test(e.message) ? 'checkpoint' : 'inclusion';
        checks.set(which, 'fail', e.message);
        return;
      }
    }
    // Growth since the receipt and since this browser last looked; the tiles authenticate the entry.
    const seen = loadSeen(now.origin);
    let leaves = null;
    try {
      for (const earlier of [receiptCheckpoint, seen]) if (earlier) checkSizes(earlier, now);
      leaves = await levelZeroLeaves(read, now);
      for (const earlier of [receiptCheckpoint, seen]) if (earlier) checkGrowth(earlier, now, leaves);
      checks.set('grew', 'ok', seen ? `${seen.size} → ${now.size}` : `${now.size}`);
      saveSeen(now);
      const w = await witnessVerdict(now.note);
      checks.set('witness', w.state, w.text);
      if (w.state === 'fail') return;
    } catch (e) {
      const detail = e.kind === 'Fork' ? `${t('my.fork')} ${e.message}` : e.kind === 'Rollback' ? `${t('my.rollback')} ${e.message}` : e.message;
      checks.set('grew', 'fail', detail);
      return;
    }
    if (!receipt) {
      try {
        const proof = inclusionProof(leaves, Number(index));
        verifyInclusion(proof, index, now.size, leafHash(entry), now.root);
        checks.set('inclusion', 'ok', `#${index}`);
      } catch (e) {
        checks.set('inclusion', 'fail', e.message);
        return;
      }
    }
    let donation;
    try {
      donation = donationOf(index, decodeEntry(entry).envelope);
    } catch (e) {
      checks.set('inclusion', 'fail', e.message);
      return;
    }
    if (reference) {
      if (!salt || salt.length !== 32) {
        checks.set('commitment', 'fail', `receipt for entry ${index}: no 32-byte salt in its extra line, so the donor cannot be checked`);
      } else if (donorCommitment(salt, reference) !== donation.donor_commitment) {
        checks.set('commitment', 'fail', `entry ${index}: the donor reference given does not open the donor commitment ${donation.donor_commitment}`);
        return;
      } else {
        checks.set('commitment', 'ok', shortHex(donation.donor_commitment));
      }
    } else {
      checks.set('commitment', 'skip', t('my.check.commitment.skip'));
    }
    await showAfter(after, donation, index);
  } catch (e) {
    out.append(h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

async function showAfter(out, donation, index) {
  out.replaceChildren(h('h2', {}, t('my.gift')),
    h('p', { class: 'gift' }, t('my.gift.line', { date: formatDate(donation.occurred_at), channel: channelName(donation.channel), amount: formatFen(donation.amount_fen), index })),
    donation.goods.length ? h('ul', {}, donation.goods.map((g) => h('li', {}, g))) : '');
  const traced = h('section', { id: 'my-trace', 'aria-live': 'polite' });
  out.append(traced);
  // The replay takes a while on a long ledger: the payouts after the gift show meanwhile.
  const tracing = showTrace(traced, donation).catch((e) => traced.append(h('p', { class: 'error', role: 'alert' }, t('my.trace.failed', { detail: e.message }))));
  let proposals;
  try {
    proposals = await api.proposals(donation.fund);
  } catch (e) {
    out.append(h('p', { class: 'error', role: 'alert' }, apiErrorMessage(e, donation.fund)));
    await tracing;
    return;
  }
  const payouts = [];
  for (const p of proposals) for (const pay of p.payouts || []) if (pay.paid_at > donation.occurred_at) payouts.push({ p, pay });
  payouts.sort((a, b) => (a.pay.paid_at < b.pay.paid_at ? -1 : 1));
  const total = sumFen(payouts.map((x) => x.pay.amount));
  // Element.append stringifies an array: every node is its own argument.
  const body = payouts.length === 0 ? [h('p', {}, t('my.after.none'))] : [
    h('p', {}, t('my.after.total', { amount: formatFen(total), n: new Set(payouts.map((x) => x.p.proposal)).size })),
    table(t('my.after'), [t('col.date'), t('col.proposal'), t('col.payee'), t('col.amount')],
      payouts.map(({ p, pay }) => [formatDate(pay.paid_at), h('a', { href: `#/funds/${encodeURIComponent(donation.fund)}/proposals/${encodeURIComponent(p.proposal)}` }, `${p.proposal} ${p.title}`), p.payee, formatFen(pay.amount)]), { class: 'after' }),
  ];
  out.append(h('h3', {}, t('my.after')), ...body);
  await tracing;
}

/**
 * Where the gift went (docs/design.md §1.6), computed by this browser's own replay of the
 * ledger (worker.js, rules.js, core/trace.js), then compared with the server's answer at
 * the ledger size that answer reflects (its `as_of_sequence`): the replay takes its trace
 * there too, so a busy server's newer entries never make a false difference.
 */
async function showTrace(out, donation) {
  out.replaceChildren(h('h3', {}, t('my.trace')));
  const progress = h('p', { class: 'progress' }, t('my.trace.replaying'));
  out.append(progress);
  // The server's answer first: the replay also takes the trace at the size it reflects.
  const server = await api.trace(donation.event_id).then((r) => ({ ok: r }), (e) => ({ error: e }));
  const asOf = server.ok && Number.isSafeInteger(server.ok.as_of_sequence) ? server.ok.as_of_sequence : null;
  const replayed = await runWorker({ trace: donation.event_id, traceAt: asOf === null ? null : String(asOf) });
  progress.remove();
  if (replayed.type !== 'done' || !replayed.trace) {
    out.append(h('p', { class: 'error', role: 'alert' }, t('my.trace.failed', { detail: replayed.type === 'done' ? `no gift ${donation.event_id}` : replayed.message })));
    return;
  }
  const trace = traceFromJson(replayed.trace);
  const other = getLang() === 'en' ? 'zh-CN' : 'en';
  const stateText = (s) => t(`my.trace.state.${s}`);
  const proposalLink = (proposal, title) => (proposal === null ? '—'
    : h('a', { href: `#/funds/${encodeURIComponent(trace.fund)}/proposals/${encodeURIComponent(proposal)}` }, `${proposal} ${title}`));
  const entryLink = (entry) => (entry === null ? '—' : h('a', { href: entryHref(entry) }, `#${entry}`));
  const goods = trace.kind === 'goods';
  out.append(h('p', { class: 'trace-intro' }, t(goods ? 'my.trace.goods.intro' : 'my.trace.intro')),
    h('p', { class: 'trace-line', id: 'trace-line' }, traceLine(trace, getLang())),
    h('p', { class: 'trace-line other', id: 'trace-line-other', lang: other }, traceLine(trace, other)),
    goods
      ? table(t('my.trace'), [t('col.goods'), t('col.state'), t('col.quantity'), t('col.distributed_for'), t('col.proposal'), t('col.date'), t('col.ledger_entry')],
        goodsRows(trace).map((r) => [
          r.name, stateText(r.state), `${r.quantity} ${r.unit}`, r.purpose ?? '—', proposalLink(r.proposal, r.title),
          r.date === null ? '—' : formatDate(r.date), entryLink(r.entry),
        ]), { class: 'trace', id: 'trace-table' })
      : table(t('my.trace'), [t('col.state'), t('col.proposal'), t('col.amount'), t('col.date'), t('col.ledger_entry')],
        traceRows(trace).map((r) => [
          stateText(r.state), proposalLink(r.proposal, r.title), formatFen(r.amount_fen),
          r.date === null ? '—' : formatDate(r.date), entryLink(r.entry),
        ]), { class: 'trace', id: 'trace-table' }));
  if (server.error) {
    out.append(h('p', { class: 'trace-server', id: 'trace-server' }, t('my.trace.no_server', { detail: server.error.message })));
    return;
  }
  // Compared at the server's size when it says one (an older server does not: then at ours).
  if (asOf !== null && !replayed.traceAt) {
    out.append(h('p', { class: 'trace-server', id: 'trace-server' }, t('my.trace.ahead', { size: asOf, verified: replayed.size })));
    return;
  }
  const difference = traceDifference(asOf === null ? trace : traceFromJson(replayed.traceAt), server.ok);
  out.append(difference === null
    ? h('p', { class: 'trace-server ok', id: 'trace-server' }, t('my.trace.agree'))
    : h('p', { class: 'trace-server error', id: 'trace-server', role: 'alert' }, t('my.trace.differ', { detail: difference })),
  asOf === null ? null : h('p', { class: 'sub', id: 'trace-as-of' }, t('my.trace.as_of', { size: asOf })));
}

// ---------------------------------------------------------------------------------
// Verify and live

function verifyPage() {
  const bar = h('progress', { id: 'verify-progress', max: 1, value: 0, 'aria-label': t('verify.title') });
  const status = h('p', { id: 'verify-status', role: 'status', 'aria-live': 'polite' });
  const verdict = h('div', { id: 'verify-verdict' });
  const start = h('button', { type: 'button', id: 'verify-start', onclick: async () => {
    start.disabled = true;
    verdict.replaceChildren();
    const began = performance.now();
    const r = await runWorker({
      previous: null,
      onProgress: ({ done, total }) => {
        bar.max = Math.max(total, 1);
        bar.value = done;
        const rate = Math.round(done / Math.max((performance.now() - began) / 1000, 0.001));
        status.textContent = t('verify.progress', { done, total, rate });
      },
    });
    const seconds = (performance.now() - began) / 1000;
    start.disabled = false;
    let witnessLine;
    if (r.type === 'done') {
      const w = await witnessVerdict(utf8(r.note));
      witnessLine = h('p', { id: 'verify-witness', class: w.state === 'skip' ? 'note' : w.state, 'data-state': w.state }, w.text);
      bar.max = Math.max(r.entries, 1);
      bar.value = r.entries;
      const rate = Math.round(r.entries / Math.max(seconds, 0.001));
      status.textContent = t('verify.progress', { done: r.entries, total: r.entries, rate });
      status.dataset.rate = String(rate);
      verdict.replaceChildren(h('p', { class: 'ok', role: 'alert' }, t('verify.ok', { n: r.entries, root: r.root, key: config.vkey.split('+').slice(0, 2).join('+') })),
        h('p', {}, t('verify.engine', { engine: r.engine === 'webcrypto' ? 'Web Crypto Ed25519' : '@noble/ed25519' })),
        witnessLine,
        h('h2', {}, t('verify.funds')),
        table(t('verify.funds'), [t('col.fund'), t('cash.received'), t('cash.refunded'), t('cash.reserved'), t('cash.paid'), t('cash.available'), t('verify.donations')],
          (r.funds || []).map((f) => [f.fund, ...['received_fen', 'refunded_fen', 'reserved_fen', 'paid_fen', 'available_fen'].map((k) => formatFen(BigInt(f.cash[k]))), String(f.donations)]),
          { class: 'verify-funds', id: 'verify-funds' }));
    } else if (r.rule) {
      verdict.replaceChildren(h('p', { class: 'fail', role: 'alert', 'data-rule': r.rule }, t('verify.rule_broken', { rule: r.rule, detail: r.message })));
    } else {
      verdict.replaceChildren(h('p', { class: 'fail', role: 'alert' }, t('verify.fail', { detail: r.message })));
    }
  } }, t('verify.start'));
  render(h('h1', {}, t('verify.title')), h('p', {}, t('verify.intro')), h('p', { class: 'vkey' }, t('my.key'), ': ', h('code', {}, config.vkey)),
    start, bar, status, verdict, h('p', { class: 'note' }, t('verify.rules')));
}

let liveSource = null;
function livePage() {
  if (config.mode === 'static') {
    render(h('h1', {}, t('live.title')), h('p', {}, t('live.unavailable')));
    return;
  }
  const state = h('p', { id: 'live-state', role: 'status' }, t('loading'));
  const list = h('ol', { id: 'live-list', class: 'live', 'aria-live': 'polite' }, h('li', { class: 'empty' }, t('live.none')));
  render(h('h1', {}, t('live.title')), h('p', {}, t('live.intro')), state, list);
  liveSource = new EventSource(new URL(`${config.api}stream`, document.baseURI).href);
  liveSource.onopen = () => { state.textContent = t('live.connected'); };
  liveSource.onerror = () => { state.textContent = t('live.disconnected'); };
  const onEvent = (m) => {
    let data;
    try {
      data = JSON.parse(m.data);
    } catch {
      return;
    }
    const empty = list.querySelector('.empty');
    if (empty) empty.remove();
    const ev = data.event || data;
    list.prepend(h('li', {}, h('span', { class: 'when' }, formatTime(ev.occurred_at || data.occurred_at)), ' ', h('code', {}, ev.type || data.type || m.type), ' ',
      ev.fund || '', data.ledger_index !== undefined ? [' · ', h('a', { href: entryHref(data.ledger_index) }, `#${data.ledger_index}`)] : null));
    while (list.children.length > 200) list.lastChild.remove();
  };
  liveSource.onmessage = onEvent;
  liveSource.addEventListener('event', onEvent);
}

async function entryPage(indexText) {
  loading();
  if (!/^(0|[1-9][0-9]{0,18})$/.test(indexText)) {
    render(errorBox(t('error.unknown_page', { page: `#/entry/${indexText}` })));
    return;
  }
  try {
    const [events, labelMap] = await Promise.all([ledgerEvents(), labels()]);
    const e = events.find((x) => x.index === Number(indexText));
    if (!e) {
      render(errorBox(t('error.unknown_page', { page: `#/entry/${indexText}` })));
      return;
    }
    render(h('h1', {}, t('signed.index', { index: e.index })), h('p', {}, h('code', {}, e.event.type), ' · ', formatTime(e.event.occurred_at)),
      h('ul', {}, h('li', {}, t('signed.by', { label: labelMap.get(e.keyid) || '—', key: e.keyid })), h('li', {}, t('signed.signature'), ': ', h('code', { class: 'sig' }, e.signature))),
      h('pre', { class: 'event' }, JSON.stringify(e.event, null, 2)));
  } catch (e) {
    render(errorBox(e.message));
  }
}

// ---------------------------------------------------------------------------------
// Router and chrome

function chrome() {
  document.documentElement.lang = getLang();
  document.title = t('app.title');
  const langButton = h('button', { type: 'button', id: 'lang', 'aria-label': t('nav.language.label'), lang: getLang() === 'en' ? 'zh-CN' : 'en', onclick: () => {
    setLang(getLang() === 'en' ? 'zh-CN' : 'en');
    try {
      localStorage.setItem(LANG_KEY, getLang());
    } catch {
      // not remembered
    }
    chrome();
    route();
  } }, t('nav.language'));
  document.getElementById('header').replaceChildren(
    h('a', { class: 'skip', href: '#main', onclick: (e) => { e.preventDefault(); main().focus(); } }, t('app.skip')),
    h('a', { class: 'brand', href: '#/' }, t('app.title')),
    h('nav', { 'aria-label': t('app.title') }, h('a', { href: '#/' }, t('nav.funds')), h('a', { href: '#/my' }, t('nav.my')),
      h('a', { href: '#/verify' }, t('nav.verify')), h('a', { href: '#/live' }, t('nav.live'))),
    langButton);
  document.getElementById('footer').replaceChildren(h('p', {}, t('footer')));
}

async function route() {
  if (liveSource) {
    liveSource.close();
    liveSource = null;
  }
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, queryPart = ''] = raw.split('?');
  const parts = pathPart.split('/').filter((p, i, all) => p !== '' || i < all.length - 1);
  const query = new URLSearchParams(queryPart);
  const seg = parts.map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  try {
    if (parts.length === 0 || (parts.length === 1 && parts[0] === '')) return await fundsPage();
    if (seg[0] === 'funds' && seg[1]) {
      if (parts.length === 2) return await overviewPage(seg[1]);
      if (seg[2] === 'trail' && parts.length === 3) return await trailPage(seg[1], query);
      if (seg[2] === 'proposals' && parts.length === 3) return await proposalsPage(seg[1]);
      if (seg[2] === 'proposals' && parts.length === 4) return await proposalPage(seg[1], seg[3]);
      if (seg[2] === 'disclosures' && parts.length === 3) return await disclosuresPage(seg[1]);
    }
    if (seg[0] === 'funds' && parts.length === 1) return await fundsPage();
    if (seg[0] === 'my') return await myPage(parts.slice(1));
    if (seg[0] === 'verify' && parts.length === 1) return verifyPage();
    if (seg[0] === 'live' && parts.length === 1) return livePage();
    if (seg[0] === 'entry' && parts.length === 2) return await entryPage(seg[1]);
    render(errorBox(t('error.unknown_page', { page: `#/${raw}` })));
  } catch (e) {
    render(errorBox(e && e.message ? e.message : String(e)));
  }
  return undefined;
}

export function start() {
  let saved;
  try {
    saved = localStorage.getItem(LANG_KEY);
  } catch {
    saved = null;
  }
  const asked = new URLSearchParams(location.search).get('lang');
  setLang(asked || saved || 'zh-CN');
  window.addEventListener('error', (e) => {
    const m = main();
    if (m) m.append(errorBox(e.message));
  });
  window.addEventListener('unhandledrejection', (e) => {
    const m = main();
    if (m) m.append(errorBox(e.reason && e.reason.message ? e.reason.message : String(e.reason)));
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', resizeCharts);
  chrome();
  route();
}

