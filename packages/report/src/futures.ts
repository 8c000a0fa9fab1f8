import type { BacktestResult, HedgeSideSummary, LiquidationRecord } from '@keel/core';
import { escapeHtml as e, formatAmount, formatInteger, formatNumber, formatPrice, formatTimeShort } from './format.ts';

type MarketSummary = NonNullable<BacktestResult['futures']>['markets'][number];

/** "LINK/USDT:USDT 5.00x cross" (and "hedge" in hedge position mode). */
function marketLabel(m: MarketSummary): string {
  return `${m.symbol} ${formatNumber(m.leverage, 2)}x ${m.marginMode}${m.positionMode === 'hedge' ? ' hedge' : ''}`;
}

/** A hedge side at the end: "long side 100 @ 7.606, unrealised -3.1, liquidation price 7.31" (or "flat"). */
function sideLine(x: HedgeSideSummary): string {
  if (x.size === 0) return `${x.positionSide} side: flat`;
  const iso = x.isolatedWallet !== 0 ? `, isolated wallet ${formatNumber(x.isolatedWallet, 2)}` : '';
  return `${x.positionSide} side: ${formatAmount(Math.abs(x.size))} @ ${formatAmount(x.entryPrice)}, unrealised ${formatNumber(x.unrealizedPnl, 2)}${iso}, liquidation price ${x.liquidationPrice > 0 ? formatPrice(x.liquidationPrice) : 'none'}`;
}

/** Liquidations shown by name in the terminal and the page; every one is in result.json. */
const LIQUIDATIONS_SHOWN = 5;

/** Orders the venue rejected for margin (initial margin, the leverage's notional cap). */
export function marginRejections(result: BacktestResult): number {
  let n = 0;
  for (const o of result.orders)
    if (o.status === 'rejected' && o.reason !== undefined && /^(insufficient margin|position of )/.test(o.reason)) n++;
  return n;
}

/** "2023-02-09 14:03 short 1,000 LINK/USDT:USDT from 7.1 closed at 9.273 (liquidation price 9.27312), realised -2,173, clearance fee 0" */
export function liquidationLine(l: LiquidationRecord): string {
  const side = l.size > 0 ? 'long' : 'short';
  return `${formatTimeShort(l.time)} ${side} ${formatNumber(Math.abs(l.size), 8)} ${l.symbol} (${l.marginMode}) from ${formatNumber(l.entryPrice, 8)} closed at ${formatNumber(l.price, 8)} (liquidation price ${formatNumber(l.liquidationPrice, 8)}): realised ${formatNumber(l.realizedPnl, 2)}, clearance fee ${formatNumber(l.clearanceFee, 2)}`;
}

/**
 * The futures block of the terminal summary: leverage and margin per market, trading fees,
 * funding and liquidation fees each apart, every liquidation, margin rejections, and warnings
 * (missing funding data is one, never a silent zero). Empty in a spot run.
 */
export function futuresSummaryLines(result: BacktestResult): string[] {
  const f = result.futures;
  if (f === undefined) return [];
  const lines = [
    `futures: ${f.markets.map((m) => `${marketLabel(m)}, funding: ${m.funding}${m.mark !== undefined ? `, mark: ${m.mark}` : ''}`).join('; ')}`,
    `  trading fees ${formatNumber(result.portfolio.feesPaid, 2)}   funding ${formatNumber(f.funding, 2)} (paid ${formatNumber(f.fundingPaid, 2)}, received ${formatNumber(f.fundingReceived, 2)}, ${formatInteger(f.fundingEvents)} payments)   liquidations ${formatInteger(f.liquidations.length)} (clearance fees ${formatNumber(f.liquidationFees, 2)})`,
  ];
  for (const m of f.markets) for (const x of m.sides ?? []) lines.push(`  ${m.symbol} ${sideLine(x)}`);
  for (const l of f.liquidations.slice(0, LIQUIDATIONS_SHOWN)) lines.push(`  liquidated: ${liquidationLine(l)}`);
  if (f.liquidations.length > LIQUIDATIONS_SHOWN)
    lines.push(`  ... and ${formatInteger(f.liquidations.length - LIQUIDATIONS_SHOWN)} more (the report, result.json)`);
  const rejected = marginRejections(result);
  if (rejected > 0)
    lines.push(`  rejected for margin: ${formatInteger(rejected)} orders (first: ${firstMarginReason(result)})`);
  for (const w of f.warnings) lines.push(`warning: ${w}`);
  return lines;
}

function firstMarginReason(result: BacktestResult): string {
  return (
    result.orders.find((o) => o.status === 'rejected' && /^(insufficient margin|position of )/.test(o.reason ?? ''))
      ?.reason ?? ''
  );
}

/** The futures card of the HTML report (liquidations are also marked on the equity curve). */
export function futuresSection(result: BacktestResult): string {
  const f = result.futures;
  if (f === undefined) return '';
  let html = `<section class="card" id="futures"><h2>Futures <span class="count">${e(formatInteger(f.liquidations.length))} liquidations · funding ${e(formatNumber(f.funding, 2))}</span></h2>`;
  html += `<p><span class="chips">${f.markets
    .map((m) => `<span class="chip">${e(`${marketLabel(m)}${m.mark !== undefined ? `, mark: ${m.mark}` : ''}`)}</span>`)
    .join('')}</span></p>`;
  const sides = f.markets.flatMap((m) => (m.sides ?? []).map((x) => `${m.symbol} ${sideLine(x)}`));
  if (sides.length > 0) html += `<ul class="hedge-sides">${sides.map((x) => `<li>${e(x)}</li>`).join('')}</ul>`;
  html += `<table><tbody><tr><th>Trading fees</th><td class="num" data-futures="fees">${e(formatNumber(result.portfolio.feesPaid, 2))}</td></tr><tr><th>Funding (net; &gt; 0 received)</th><td class="num" data-futures="funding">${e(formatNumber(f.funding, 2))}</td></tr><tr><th>Funding paid / received</th><td class="num">${e(formatNumber(f.fundingPaid, 2))} / ${e(formatNumber(f.fundingReceived, 2))} (${e(formatInteger(f.fundingEvents))} payments)</td></tr><tr><th>Liquidation clearance fees</th><td class="num" data-futures="liquidation-fees">${e(formatNumber(f.liquidationFees, 2))}</td></tr></tbody></table>`;
  if (f.liquidations.length > 0) {
    const rows = f.liquidations
      .slice(0, 200)
      .map(
        (l) =>
          `<tr class="liquidation"><td class="mono">${e(formatTimeShort(l.time))}</td><td>${e(l.symbol)}</td><td>${l.size > 0 ? 'long' : 'short'}</td><td class="num">${e(formatNumber(Math.abs(l.size), 8))}</td><td class="num">${e(formatNumber(l.entryPrice, 8))}</td><td class="num">${e(formatNumber(l.liquidationPrice, 8))}</td><td class="num">${e(formatNumber(l.price, 8))}</td><td class="num">${e(formatNumber(l.realizedPnl, 2))}</td><td class="num">${e(formatNumber(l.clearanceFee, 2))}</td></tr>`,
      )
      .join('');
    html += `<h3>Liquidations</h3><div class="scroll"><table><thead><tr><th>Time (UTC)</th><th>Market</th><th>Side</th><th class="num">Size</th><th class="num">Entry</th><th class="num">Liquidation price</th><th class="num">Closed at</th><th class="num">Realised</th><th class="num">Clearance fee</th></tr></thead><tbody>${rows}</tbody></table></div>`;
  }
  const rejected = marginRejections(result);
  if (rejected > 0)
    html += `<p>${e(formatInteger(rejected))} orders rejected for margin (first: ${e(firstMarginReason(result))}).</p>`;
  for (const w of f.warnings) html += `<p class="warning">warning: ${e(w)}</p>`;
  return `${html}</section>`;
}
