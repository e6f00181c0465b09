/**
 * Format an amount of cents as a price string such as "$1.50".
 * @param {number} cents - a whole number of cents, never negative
 * @returns {string}
 */
export function formatPrice(cents) {
  throw new Error("not implemented");
}

/** Join formatted prices with commas. */
export function formatAll(list) {
  return list.map(formatPrice).join(", ");
}
