// Reading ledger files over HTTP with a size cap; errors name the URL as `fundtrail
// verify --ledger <url>` names it.

import { FetchError } from './verify.js';

/** A reader of ledger files under the absolute URL `base` (ending in '/'). */
export function ledgerReader(base) {
  return async function read(path, bytesMax) {
    const url = new URL(path, base).href;
    let response;
    try {
      response = await fetch(url, path === 'checkpoint' ? { cache: 'no-store' } : {});
    } catch (e) {
      throw new FetchError(url, e.message);
    }
    if (response.status === 404) throw new FetchError(url, 'not found', true);
    if (!response.ok) throw new FetchError(url, `HTTP status ${response.status}`);
    const data = new Uint8Array(await response.arrayBuffer());
    if (data.length > bytesMax) throw new FetchError(url, `larger than the maximum of ${bytesMax} bytes`);
    return data;
  };
}
