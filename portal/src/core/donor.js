// A donor's receipt, checked in the browser (crates/fundtrail-audit/src/receipt.rs):
// the receipt link `#/my/<ledger_index>/<salt, 43-char base64url>[/<donor reference,
// percent-encoded>]`, the donor commitment SHA-256("fundtrail/donor-commitment/v1\0" ‖
// salt ‖ reference) (crates/fundtrail-domain/src/ids.rs), and the donation an entry holds.

import { sha256 } from '@noble/hashes/sha2.js';
import { b64decode, b64urlDecode, b64urlEncode, concat, hex, utf8, utf8Decode } from './bytes.js';
import { LedgerError, U64_MAX } from './ledger.js';

export const SALT_SIZE = 32;
export const COMMITMENT_TAG = utf8('fundtrail/donor-commitment/v1\0');
/** Longest donor reference accepted from a link, in bytes. */
export const DONOR_REFERENCE_LEN_MAX = 256;

export function donorCommitment(salt, reference) {
  return hex(sha256(concat(COMMITMENT_TAG, salt, utf8(reference))));
}

/** The link path after `#/my/`, built exactly as the CLI builds it. */
export function receiptLinkPath(index, salt, reference) {
  let path = `${index}/${b64urlEncode(salt)}`;
  if (reference) path += `/${encodeURIComponent(reference)}`;
  return path;
}

/**
 * Parses the parts of a receipt link after `#/my/`: [index, salt, reference?].
 * Throws a LedgerError with code 'BadLink' naming what is wrong.
 */
export function parseReceiptLink(parts) {
  const bad = (what) => new LedgerError('BadLink', what);
  if (!Array.isArray(parts) || parts.length < 2 || parts.length > 3) {
    throw bad('the link must be #/my/<ledger index>/<salt>[/<donor reference>]');
  }
  const [indexText, saltText, refText] = parts;
  if (!/^(0|[1-9][0-9]{0,19})$/.test(indexText) || BigInt(indexText) > U64_MAX) {
    throw bad(`ledger index ${JSON.stringify(indexText)} is not a decimal number`);
  }
  if (saltText.length !== 43) throw bad(`the salt has ${saltText.length} characters, a receipt link carries 43`);
  const salt = b64urlDecode(saltText);
  if (!salt || salt.length !== SALT_SIZE) throw bad('the salt is not base64url (43 characters, no padding)');
  let reference = null;
  if (refText !== undefined && refText !== '') {
    try {
      reference = decodeURIComponent(refText);
    } catch {
      throw bad('the donor reference is not percent-encoded UTF-8');
    }
    if (utf8(reference).length > DONOR_REFERENCE_LEN_MAX) throw bad(`the donor reference is longer than ${DONOR_REFERENCE_LEN_MAX} bytes`);
  }
  return { index: BigInt(indexText), salt, reference };
}

/** The donation an envelope records, or a LedgerError (receipt.rs `donation_of`). */
export function donationOf(index, envelope) {
  const bad = (detail) => new LedgerError('Envelope', `entry ${index}: its envelope is not a readable event: ${detail}`);
  let wire;
  try {
    wire = JSON.parse(utf8Decode(envelope));
  } catch (e) {
    throw bad(e.message);
  }
  if (!wire || wire.payloadType !== 'application/vnd.fundtrail.event+json') throw bad(`payloadType ${JSON.stringify(wire && wire.payloadType)}`);
  const payload = b64decode(wire.payload);
  if (!payload) throw bad('payload is not base64');
  let event;
  try {
    event = JSON.parse(utf8Decode(payload));
  } catch (e) {
    throw bad(e.message);
  }
  const body = event.body || {};
  let amountFen, goods = [];
  if (event.type === 'donation.received') {
    amountFen = BigInt(body.amount_fen);
  } else if (event.type === 'goods.received') {
    amountFen = 0n;
    for (const line of body.items || []) {
      amountFen += BigInt(line.unit_value_fen) * BigInt(line.quantity);
      goods.push(`${line.name} ×${line.quantity} ${line.unit}`);
    }
  } else {
    throw new LedgerError('NotADonation', `entry ${index} is a ${event.type} event, not a donation (donation.received or goods.received)`);
  }
  return {
    event_id: event.id, kind: event.type, fund: event.fund, amount_fen: amountFen, channel: body.channel,
    occurred_at: event.occurred_at, donor_commitment: body.donor, goods, author: event.author,
  };
}
