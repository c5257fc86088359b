// How numbers and times read on the page.

const integer = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

/** 850 m², 12,400 m², 3.2 ha, 4.1 km². */
export function formatArea(m2) {
  if (m2 < 20_000) return `${integer.format(m2)} m²`;
  if (m2 < 2_000_000) return `${oneDecimal.format(m2 / 10_000)} ha`;
  return `${oneDecimal.format(m2 / 1_000_000)} km²`;
}

/** 0.873 -> "87 %". */
export function formatScore(score) {
  return `${Math.round(score * 100)} %`;
}

/** An RFC 3339 instant as "2026-05-01 14:03:12 UTC" (one zone for every reader of a shared screen). */
export function formatTime(iso) {
  if (!iso) return "unknown";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** "3 detections", "1 detection". */
export function plural(count, word) {
  return `${integer.format(count)} ${word}${count === 1 ? "" : "s"}`;
}
