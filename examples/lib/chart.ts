/**
 * The batch-size sweep chart: validation error against batch size, one
 * line per normalization, mean with ±1 std error bars and band, drawn with vega-lite
 * and rendered to SVG (vega's headless renderer) and PNG (resvg).
 */
/** A vega-lite spec (typed loosely: vega-lite's own types need moduleResolution node16). */
export type TopLevelSpec = Record<string, unknown>;

interface VegaLite {
  compile(spec: TopLevelSpec): {spec: import('vega').Spec};
}

// A variable specifier: TypeScript's node10 resolution cannot see vega-lite's
// package "exports"; Node and tsx load it fine.
const VEGA_LITE = 'vega-lite';

export interface SummaryRow {
  norm: string;
  batchSize: number;
  /** Validation error in percent: mean and sample standard deviation over seeds. */
  mean: number;
  std: number;
  runs: number;
}

export function sweepChartSpec(rows: SummaryRow[], title: string, subtitle: string): TopLevelSpec {
  const values = rows.map((r) => ({...r, lo: Math.max(0, r.mean - r.std), hi: r.mean + r.std}));
  const batchSizes = [...new Set(rows.map((r) => r.batchSize))].sort((a, b) => b - a);
  const x = {
    field: 'batchSize', type: 'quantitative' as const, title: 'batch size (images per batch)',
    // Largest batch on the left, as in the paper's Figure 1.
    scale: {type: 'log' as const, base: 2, domain: [Math.max(...batchSizes), Math.min(...batchSizes)]},
    axis: {values: batchSizes, format: 'd'},
  };
  const color = {field: 'norm', type: 'nominal' as const, title: null, sort: ['BatchNorm', 'GroupNorm', 'GroupNorm+WS', 'LayerNorm', 'InstanceNorm']};
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: {text: title, subtitle},
    width: 520,
    height: 320,
    background: 'white',
    data: {values},
    encoding: {x, color},
    layer: [
      {mark: {type: 'area', opacity: 0.12}, encoding: {y: {field: 'lo', type: 'quantitative'}, y2: {field: 'hi'}}},
      // Error bars: mean ± 1 std over seeds.
      {mark: {type: 'rule', strokeWidth: 1.5}, encoding: {y: {field: 'lo', type: 'quantitative'}, y2: {field: 'hi'}}},
      {
        mark: {type: 'line', point: true, strokeWidth: 2},
        encoding: {
          y: {field: 'mean', type: 'quantitative', title: 'validation error (%), mean ± std over seeds', scale: {zero: true}},
          tooltip: [{field: 'norm'}, {field: 'batchSize'}, {field: 'mean', format: '.2f'}, {field: 'std', format: '.2f'}],
        },
      },
    ],
    config: {font: 'DejaVu Sans', legend: {orient: 'right', symbolType: 'stroke', symbolOpacity: 1, symbolStrokeWidth: 3}},
  };
}

/** Renders the spec to an SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const vl = (await import(VEGA_LITE)) as VegaLite;
  const vega = await import('vega');
  const view = new vega.View(vega.parse(vl.compile(spec).spec), {renderer: 'none'});
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Rasterizes an SVG string to PNG bytes (2x scale), or null when resvg is unavailable. */
export async function svgToPng(svg: string): Promise<Uint8Array|null> {
  try {
    const {Resvg} = await import('@resvg/resvg-js');
    const r = new Resvg(svg, {fitTo: {mode: 'zoom', value: 2}, font: {loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans'}});
    return r.render().asPng();
  } catch (e) {
    console.warn(`PNG not written: ${(e as Error).message}`);
    return null;
  }
}
