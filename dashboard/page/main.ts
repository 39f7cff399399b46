/**
 * The dashboard page's entry point: finds its settings (URL fragment, `config.json`, or a form),
 * then runs the dashboard.
 */
import { startDashboard } from './app.js';
import {
  CONFIG_FILE,
  fragmentSettings,
  isComplete,
  PageConfig,
  resolveSettings,
  type Settings,
} from './config.js';
import { byId } from './view/dom.js';

const REMEMBERED_KEY = 'model-streams-dashboard';

/** `config.json` beside the page; absent or unreadable means nothing is preset. */
async function loadPageConfig(): Promise<PageConfig> {
  try {
    const response = await fetch(new URL(CONFIG_FILE, document.baseURI), { cache: 'no-store' });
    if (!response.ok) return {};
    const parsed = PageConfig.safeParse(await response.json());
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

/** What the operator typed into the form earlier in this tab (session storage: gone with the tab). */
function remembered(): Partial<Settings> {
  try {
    const raw = sessionStorage.getItem(REMEMBERED_KEY);
    const value: unknown = raw ? JSON.parse(raw) : undefined;
    if (typeof value !== 'object' || value === null) return {};
    const record = value as Record<string, unknown>;
    const found: { token?: string; apiUrl?: string; websocketUrl?: string } = {};
    if (typeof record.token === 'string') found.token = record.token;
    if (typeof record.apiUrl === 'string') found.apiUrl = record.apiUrl;
    if (typeof record.websocketUrl === 'string') found.websocketUrl = record.websocketUrl;
    return found;
  } catch {
    return {};
  }
}

function remember(settings: Partial<Settings>): void {
  try {
    sessionStorage.setItem(REMEMBERED_KEY, JSON.stringify(settings));
  } catch {
    // Storage can be disabled; the page then asks again after a reload.
  }
}

function run(settings: Settings): void {
  startDashboard(document, {
    settings,
    onUnauthorized: (message) => {
      byId(document, 'app', HTMLElement).hidden = true;
      byId(document, 'banner', HTMLElement).hidden = true;
      const { token: _refused, ...rest } = settings;
      remember(rest);
      askForSettings(rest, `The token was refused: ${message}`);
    },
  });
}

/** Shows the connect form, filled with what is known. */
function askForSettings(known: Partial<Settings>, error?: string): void {
  const form = byId(document, 'connect-form', HTMLFormElement);
  const errorLine = byId(document, 'connect-error', HTMLElement);
  const field = (name: keyof Settings) => {
    const input = form.elements.namedItem(name);
    if (!(input instanceof HTMLInputElement)) throw new Error(`the connect form has no input "${name}"`);
    return input;
  };
  for (const name of ['token', 'apiUrl', 'websocketUrl'] as const) field(name).value = known[name] ?? '';
  errorLine.textContent = error ?? '';
  errorLine.hidden = !error;
  form.hidden = false;
  form.onsubmit = (event) => {
    event.preventDefault();
    const settings = {
      token: field('token').value.trim(),
      apiUrl: field('apiUrl').value.trim().replace(/\/+$/, ''),
      websocketUrl: field('websocketUrl').value.trim(),
    };
    if (!isComplete(settings)) return;
    form.hidden = true;
    remember(settings);
    run(settings);
  };
}

async function main(): Promise<void> {
  const settings = resolveSettings({
    fragment: fragmentSettings(location.hash),
    config: await loadPageConfig(),
    remembered: remembered(),
    origin: location.origin === 'null' ? '' : location.origin,
  });
  if (isComplete(settings)) run(settings);
  else askForSettings(settings);
}

void main();
