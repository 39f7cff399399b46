import type { Subscription } from 'rxjs';
import {
  type ConnectionState,
  createStreamsClient,
  type ItemChange,
  type StreamsClient,
  type WebSocketConstructor,
} from '../../shared/client/index.js';
import type { ItemStatus } from '../../shared/contracts/stored-item.js';
import { type Settings, tenantLabel, tokenTenant } from './config.js';
import { formatRate } from './format.js';
import { ItemsStore, isTerminal, type StatusFilter } from './items-store.js';
import { createQueryApi, QueryApiError } from './query-api.js';
import { ThroughputMeter } from './throughput.js';
import { drawSparkline } from './view/chart.js';
import { ConnectionView } from './view/connection.js';
import { DetailPanel } from './view/detail-panel.js';
import { byId, query, setText } from './view/dom.js';
import { ItemsTable } from './view/items-table.js';

/** Rows asked of `GET /items` and shown in the table. */
const LIST_LIMIT = 100;
/** The query API is asked at most this often for what the live stream does not carry. */
const MIN_REFRESH_INTERVAL_MS = 1_000;
/** Queued items send nothing live: the list is also refreshed on this period. */
const REFRESH_PERIOD_MS = 10_000;
const TOAST_MS = 6_000;
const FILTERS: readonly StatusFilter[] = ['all', 'queued', 'streaming', 'completed', 'failed'];

export interface DashboardOptions {
  readonly settings: Settings;
  /** Called when the query API refuses the token: the page asks for another. */
  readonly onUnauthorized: (message: string) => void;
  /** Default: the browser's `WebSocket`. */
  readonly WebSocket?: WebSocketConstructor;
  readonly now?: () => number;
}

export interface Dashboard {
  stop(): void;
}

/**
 * Runs the dashboard in `doc`: one WebSocket subscribed to every item, the items table seeded and
 * completed from the query API (model, timestamps, queued items), the selected item's text, and
 * the throughput chart.
 */
export function startDashboard(doc: Document, options: DashboardOptions): Dashboard {
  const now = options.now ?? Date.now;
  const { settings } = options;
  const api = createQueryApi(settings.apiUrl, settings.token);
  const client: StreamsClient = createStreamsClient({
    url: settings.websocketUrl,
    token: settings.token,
    reconnect: { initialDelayMs: 250, maxDelayMs: 5_000 },
    ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
  });
  const store = new ItemsStore();
  const meter = new ThroughputMeter();
  /** Items the live stream has told about, to tell a mid-stream join from new text. */
  const heardLive = new Set<string>();
  const subscriptions: Subscription[] = [];
  const timers: Array<ReturnType<typeof setInterval>> = [];
  let filter: StatusFilter = 'all';
  let selected: string | undefined;
  let stopped = false;

  byId(doc, 'app', HTMLElement).hidden = false;
  // Which tenant's items these are: the token's (the servers show no other).
  const tenant = tokenTenant(settings.token);
  const tenantView = byId(doc, 'tenant', HTMLElement);
  if (tenant) {
    tenantView.textContent = tenantLabel(tenant);
    tenantView.dataset.tenant = tenant;
    tenantView.hidden = false;
  }
  const connection = new ConnectionView(
    byId(doc, 'connection', HTMLElement),
    byId(doc, 'banner', HTMLElement),
  );
  const emptyRows = byId(doc, 'rows-empty', HTMLElement);
  const table = new ItemsTable(byId(doc, 'rows', HTMLTableSectionElement), (itemId) => select(itemId));
  const detail = new DetailPanel(doc, (itemId) => client.cancel(itemId));
  const toast = byId(doc, 'toast', HTMLElement);
  const metrics = {
    tokens: metric('metric-tokens'),
    flight: metric('metric-flight'),
    failures: metric('metric-failures'),
  };
  const filterButtons = FILTERS.map((value) => {
    const button = query(doc, `button[data-filter="${value}"]`, HTMLButtonElement);
    button.addEventListener('click', () => {
      filter = value;
      requestRefresh();
      render();
    });
    return { value, button, count: query(button, '.count', HTMLElement) };
  });

  function metric(id: string) {
    const figure = byId(doc, id, HTMLElement);
    return {
      value: query(figure, '.metric-value', HTMLElement),
      svg: query(figure, 'svg', SVGSVGElement),
    };
  }

  // ---- rendering, at most once per frame ----
  let frame: number | undefined;
  function render(): void {
    if (frame !== undefined || stopped) return;
    frame = requestAnimationFrame(() => {
      frame = undefined;
      draw();
    });
  }

  function draw(): void {
    const at = now();
    const rows = store.list(filter, LIST_LIMIT);
    table.render(rows, selected, at);
    emptyRows.hidden = rows.length > 0;
    const counts = store.counts();
    for (const { value, button, count } of filterButtons) {
      button.setAttribute('aria-pressed', String(value === filter));
      const n = value === 'all' ? store.size : counts[value as ItemStatus];
      setText(count, String(n));
    }
    const row = selected ? store.get(selected) : undefined;
    if (row) detail.renderFacts(row, at);
  }

  function drawChart(): void {
    const at = now();
    meter.sampleInFlight(store.inFlight(), at);
    const series = meter.series(at);
    const last = (values: number[]) => values[values.length - 1] ?? 0;
    setText(metrics.tokens.value, formatRate(last(series.tokensPerSecond)));
    setText(metrics.flight.value, String(last(series.inFlight)));
    setText(metrics.failures.value, String(last(series.failuresPerMinute)));
    drawSparkline(metrics.tokens.svg, series.tokensPerSecond, 10);
    drawSparkline(metrics.flight.svg, series.inFlight, 2);
    drawSparkline(metrics.failures.svg, series.failuresPerMinute, 2);
  }

  function select(itemId: string): void {
    selected = itemId;
    client.subscribe(itemId);
    detail.show(itemId, client.view(itemId), store.get(itemId), now());
    render();
  }

  // ---- the query API fills in what the live stream does not carry ----
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  let refreshing = false;
  let refreshAgain = false;
  let lastRefresh = 0;

  function requestRefresh(): void {
    if (stopped || refreshTimer !== undefined) return;
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    const wait = Math.max(0, lastRefresh + MIN_REFRESH_INTERVAL_MS - now());
    refreshTimer = setTimeout(() => {
      refreshTimer = undefined;
      void refresh();
    }, wait);
  }

  async function refresh(): Promise<void> {
    refreshing = true;
    lastRefresh = now();
    try {
      const lists = await Promise.all([
        api.listItems({ limit: LIST_LIMIT }),
        ...(filter === 'all' ? [] : [api.listItems({ status: filter, limit: LIST_LIMIT })]),
      ]);
      if (stopped) return;
      const at = now();
      for (const summary of lists.flat()) store.applySummary(summary, at);
      render();
    } catch (err) {
      if (stopped) return;
      if (err instanceof QueryApiError && err.status === 401) {
        stop();
        options.onUnauthorized(err.message);
        return;
      }
      showToast(`Query API: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      refreshing = false;
      if (refreshAgain) {
        refreshAgain = false;
        requestRefresh();
      }
    }
  }

  // ---- live ----
  function onChange(change: ItemChange): void {
    const at = now();
    const view = change.view;
    const before = store.get(view.itemId);
    const joinedMidStream = !heardLive.has(view.itemId) && before?.status === 'streaming';
    heardLive.add(view.itemId);
    const update = store.applyLive(view, at);
    // Text of an item already ended (a snapshot on selection) or joined mid-stream is history, not throughput.
    if (change.kind === 'text' && !change.replaced && !isTerminal(view.status) && !joinedMidStream) {
      meter.addText(change.appended.length, at);
    }
    if (change.kind === 'done' && view.usage) meter.calibrate(view.text.length, view.usage.outputTokens);
    if (update.ended && view.status === 'failed') meter.addFailure(at);
    if (update.isNew || update.ended) requestRefresh();
    detail.apply(change);
    render();
  }

  let toastTimer: ReturnType<typeof setTimeout> | undefined;
  function showToast(message: string): void {
    setText(toast, message);
    toast.hidden = false;
    if (toastTimer) clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      toast.hidden = true;
    }, TOAST_MS);
  }

  subscriptions.push(
    client.state$.subscribe((state: ConnectionState) => {
      connection.render(state, now());
      // What changed while the stream was down (queued items, timestamps) comes from the query API.
      if (state === 'open') requestRefresh();
    }),
    client.changes$.subscribe(onChange),
    client.errors$.subscribe((error) => {
      if (error.itemId !== undefined && error.itemId === detail.itemId && detail.cancelling) {
        detail.cancelFailed(error.message);
      }
      showToast(error.itemId ? `${error.itemId}: ${error.message}` : error.message);
    }),
  );
  client.subscribeAll();
  void refresh();
  timers.push(
    setInterval(() => {
      drawChart();
      render();
    }, 1_000),
    setInterval(requestRefresh, REFRESH_PERIOD_MS),
  );
  drawChart();
  render();

  function stop(): void {
    if (stopped) return;
    stopped = true;
    for (const timer of timers) clearInterval(timer);
    if (refreshTimer) clearTimeout(refreshTimer);
    if (toastTimer) clearTimeout(toastTimer);
    if (frame !== undefined) cancelAnimationFrame(frame);
    for (const subscription of subscriptions) subscription.unsubscribe();
    client.close();
  }

  return { stop };
}
