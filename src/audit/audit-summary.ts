import type { LedgerAuditReport, LedgerViolation } from './ledger-audit';

/** The URL without its password, for a heading a terminal or a CI log may keep. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

const row = (label: string, value: string): string => `  ${label.padEnd(34)}${value}`;

/** The audit's plain-text summary: what was checked, the totals, the violations by kind and id. */
export function formatSummary(report: LedgerAuditReport, where: string): string {
  const { totals } = report;
  const r = totals.reservations;
  const found = Object.values(report.counts).reduce((sum, n) => sum + n, 0);
  const lines = [
    `Ledger audit of ${where}, snapshot at ${report.checkedAt.toISOString()} (database clock)`,
    '',
    row('options checked', String(report.options)),
    row('allocation (sum)', String(totals.allocation)),
    row(
      'sold: counter / completed rows',
      `${totals.purchasedCounter} / ${totals.completedQuantity}` +
        `   (purchases: ${totals.purchases.completed} completed, ${totals.purchases.cancelled} cancelled)`,
    ),
    row(
      'held: counter / held rows',
      `${totals.heldCounter} / ${totals.heldQuantity}` +
        `   (of which ${totals.overdueHeldQuantity} past expires_at, not yet swept)`,
    ),
    row(
      'reservations',
      `${r.held} held, ${r.confirmed} confirmed, ${r.released} released, ${r.expired} expired`,
    ),
    row('violations', String(found)),
  ];
  for (const [kind, n] of Object.entries(report.counts)) {
    if (n > 0) lines.push(row(`  ${kind}`, String(n)));
  }
  if (report.violations.length > 0) {
    lines.push('', '  kind / option / reservation / purchase / figures');
    lines.push(...report.violations.map(describeViolation));
    if (report.truncated) lines.push(`  … ${found - report.violations.length} more not listed`);
  }
  lines.push('', report.ok ? 'OK: no violation' : `FAILED: ${found} violation(s)`);
  return lines.join('\n');
}

function describeViolation(violation: LedgerViolation): string {
  const figures = violation.figures
    ? Object.entries(violation.figures)
        .map(([name, value]) => `${name}=${value}`)
        .join(' ')
    : '';
  return `  ${[
    violation.kind,
    violation.optionId,
    violation.reservationId ?? '-',
    violation.purchaseId ?? '-',
    figures,
  ]
    .join('  ')
    .trimEnd()}`;
}
