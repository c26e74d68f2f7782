// Where the pages read from. On `fundtrail serve`: the JSON API under /v1/ and the
// ledger under /ledger/. As static files beside a ledger mirror (`fundtrail ledger
// mirror --portal`): api/*.json written by the mirror, the tiles beside them.
// The page's <meta> tags say which, and pin the log's verifier key.

function meta(name, fallback) {
  const el = typeof document !== 'undefined' && document.querySelector(`meta[name="${name}"]`);
  const value = el && el.getAttribute('content');
  return value && !value.startsWith('{{') ? value : fallback;
}

export const config = {
  mode: meta('fundtrail-mode', 'server'),
  api: meta('fundtrail-api', '/v1/'),
  ledger: meta('fundtrail-ledger', '/ledger/'),
  vkey: meta('fundtrail-vkey', ''),
  /** The witness policy (C2SP tlog-policy text) pinned by the operator; '' when none. */
  witnessPolicy: meta('fundtrail-witness-policy', ''),
};

/** A problem reading the API: `status` is the HTTP status (0: no answer). */
export class ApiError extends Error {
  constructor(url, status, detail) {
    super(detail);
    this.name = 'ApiError';
    this.url = url;
    this.status = status;
  }
}

async function getJson(path) {
  const url = new URL(config.api + path, document.baseURI).href;
  let response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' } });
  } catch (e) {
    throw new ApiError(url, 0, e.message);
  }
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try {
      const problem = await response.json();
      if (problem && problem.detail) detail = problem.detail;
    } catch {
      // not a problem document
    }
    throw new ApiError(url, response.status, detail);
  }
  try {
    return await response.json();
  } catch (e) {
    throw new ApiError(url, response.status, `not JSON: ${e.message}`);
  }
}

const isStatic = () => config.mode === 'static';
const enc = encodeURIComponent;

export const api = {
  funds: () => getJson(isStatic() ? 'funds.json' : 'funds').then((r) => r.funds),
  fund: (fund) => getJson(isStatic() ? `funds/${enc(fund)}.json` : `funds/${enc(fund)}`),
  proposals: (fund) => getJson(isStatic() ? `funds/${enc(fund)}/proposals.json` : `funds/${enc(fund)}/proposals`).then((r) => r.proposals),
  async proposal(fund, id) {
    if (!isStatic()) return getJson(`funds/${enc(fund)}/proposals/${enc(id)}`);
    const found = (await api.proposals(fund)).find((p) => p.proposal === id);
    if (!found) throw new ApiError('', 404, `unknown proposal ${id} in ${fund}`);
    return found;
  },
  /** Every donation of the fund, in ledger order (all pages). */
  async donations(fund) {
    if (isStatic()) return (await getJson(`funds/${enc(fund)}/donations.json`)).donations;
    const all = [];
    let after = 0;
    for (let page = 0; page < 10000; page++) {
      const r = await getJson(`funds/${enc(fund)}/donations?limit=500&after=${after}`);
      all.push(...r.donations);
      if (r.next_after === null || r.next_after === undefined) break;
      after = r.next_after;
    }
    return all;
  },
  keys: () => getJson(isStatic() ? 'keys.json' : 'keys').then((r) => r.keys),
  /** The server's trace of a cash gift (a static mirror has none: 404). */
  trace: (donation) => (isStatic() ? Promise.reject(new ApiError('', 404, 'a static mirror serves no traces')) : getJson(`donations/${enc(donation)}/trace`)),
};

/** The absolute URL of the ledger (tiles and checkpoint). */
export const ledgerBase = () => new URL(config.ledger, document.baseURI).href;
