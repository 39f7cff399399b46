import type { ConnectionState } from '../../../shared/client/index.js';
import { formatClock } from '../format.js';
import { setText } from './dom.js';

const PILL: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

/**
 * The connection pill in the header and the banner shown while the live stream is down. The
 * banner appears only once a connection was lost (or never made), not during the first connect.
 */
export class ConnectionView {
  readonly #pill: HTMLElement;
  readonly #banner: HTMLElement;
  #downSince: number | undefined;

  constructor(pill: HTMLElement, banner: HTMLElement) {
    this.#pill = pill;
    this.#banner = banner;
  }

  render(state: ConnectionState, now: number): void {
    this.#pill.dataset.state = state;
    setText(this.#pill, PILL[state]);
    if (state === 'open' || state === 'connecting') {
      this.#downSince = undefined;
      this.#banner.hidden = true;
      this.#banner.dataset.state = state;
      return;
    }
    this.#downSince ??= now;
    this.#banner.dataset.state = state;
    setText(
      this.#banner,
      state === 'reconnecting'
        ? `Disconnected from the live stream since ${formatClock(this.#downSince)} — reconnecting… Text resumes where it stopped: nothing is lost or shown twice.`
        : 'Disconnected from the live stream. Reload the page to connect again.',
    );
    this.#banner.hidden = false;
  }
}
