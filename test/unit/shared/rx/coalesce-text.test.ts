import { of, Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { coalesceText } from '../../../../shared/rx/coalesce-text.js';

const newScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('coalesceText', () => {
  describe('completion and errors', () => {
    it('never emits for a source that never emits', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        expectObservable(cold<string>('-').pipe(coalesceText({ maxBytes: 16, intervalMs: 5 }))).toBe('-');
      });
    });

    it('completes at once for an empty source', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        expectObservable(cold<string>('|').pipe(coalesceText({ maxBytes: 16, intervalMs: 5 }))).toBe('|');
      });
    });

    it('emits a single fragment at once and completes with the source', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('a|', { a: 'hello' });
        expectObservable(source.pipe(coalesceText({ maxBytes: 16, intervalMs: 50 }))).toBe('a|', {
          a: 'hello',
        });
      });
    });

    it('ignores empty fragments', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('a-b|', { a: '', b: 'x' });
        expectObservable(source.pipe(coalesceText({ maxBytes: 16, intervalMs: 0 }))).toBe('--b|', {
          b: 'x',
        });
      });
    });

    it('passes an error through at once and drops the buffered text', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('a 9ms b 9ms #', { a: 'one ', b: 'two ' }, new Error('model stream broke'));
        expectObservable(source.pipe(coalesceText({ maxBytes: 16, intervalMs: 50 }))).toBe(
          'a 19ms #',
          { a: 'one ' },
          new Error('model stream broke'),
        );
      });
    });

    it('stops the source, the timer and emissions on early unsubscribe', () => {
      newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('a 9ms b 9ms c 100ms |', { a: 'a', b: 'b', c: 'c' });
        const result = source.pipe(coalesceText({ maxBytes: 16, intervalMs: 50 }));
        // b and c wait for the interval (until 50), which the subscriber never reaches.
        expectObservable(result, '^ 30ms !').toBe('a', { a: 'a' });
        expectSubscriptions(source.subscriptions).toBe('^ 30ms !');
      });
    });

    it('flushes what is left when the source completes, without waiting for the interval', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('a 9ms b 9ms |', { a: 'first ', b: 'second' });
        expectObservable(source.pipe(coalesceText({ maxBytes: 64, intervalMs: 50 }))).toBe('a 19ms (b|)', {
          a: 'first ',
          b: 'second',
        });
      });
    });
  });

  describe('flush by time', () => {
    it('emits many fragments arriving within an interval as one chunk at the end of the interval', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('a 9ms b 9ms c 9ms d 100ms |', { a: 'a', b: 'b', c: 'c', d: 'd' });
        expectObservable(source.pipe(coalesceText({ maxBytes: 64, intervalMs: 50 }))).toBe(
          'a 49ms x 80ms |',
          { a: 'a', x: 'bcd' },
        );
      });
    });

    it('sends the first fragment after a quiet period at once', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('a 99ms b 99ms c|', { a: 'a', b: 'b', c: 'c' });
        expectObservable(source.pipe(coalesceText({ maxBytes: 64, intervalMs: 50 }))).toBe(
          'a 99ms b 99ms c|',
          { a: 'a', b: 'b', c: 'c' },
        );
      });
    });

    it('emits every fragment separately when the interval is 0', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('abc|', { a: 'a', b: 'b', c: 'c' });
        expectObservable(source.pipe(coalesceText({ maxBytes: 64, intervalMs: 0 }))).toBe('abc|', {
          a: 'a',
          b: 'b',
          c: 'c',
        });
      });
    });
  });

  describe('flush by size', () => {
    it('emits a full buffer before the interval has passed', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('abc 100ms |', { a: 'ab', b: 'cd', c: 'ef' });
        // 'ab' leaves at once; 'cd' waits; with 'ef' the buffer holds maxBytes and leaves at once.
        expectObservable(source.pipe(coalesceText({ maxBytes: 4, intervalMs: 50 }))).toBe('a-x 100ms |', {
          a: 'ab',
          x: 'cdef',
        });
      });
    });

    it('splits a long fragment into chunks of at most maxBytes', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('a 9ms |', { a: 'abcdefghij' });
        // Full chunks leave at once; the short rest waits for the interval or, here, the completion.
        expectObservable(source.pipe(coalesceText({ maxBytes: 4, intervalMs: 1000 }))).toBe('(xy) 6ms (z|)', {
          x: 'abcd',
          y: 'efgh',
          z: 'ij',
        });
      });
    });

    it('counts UTF-8 bytes and never splits a code point', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        // é is 2 bytes, 😀 is 4 bytes in two UTF-16 code units.
        const source = cold('a 9ms |', { a: 'é😀😀x' });
        expectObservable(source.pipe(coalesceText({ maxBytes: 7, intervalMs: 1000 }))).toBe('x 9ms (y|)', {
          x: 'é😀',
          y: '😀x',
        });
      });
    });

    it('holds back a high surrogate until its low half arrives in the next fragment', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('a 9ms b|', { a: 'x\uD83D', b: '\uDE00y' });
        expectObservable(source.pipe(coalesceText({ maxBytes: 64, intervalMs: 0 }))).toBe('a 9ms b|', {
          a: 'x',
          b: '😀y',
        });
      });
    });

    it('rejects a maxBytes too small for a code point and a negative interval, naming the value', () => {
      expect(() => coalesceText({ maxBytes: 3, intervalMs: 0 })).toThrow(/maxBytes .* got 3/);
      expect(() => coalesceText({ maxBytes: 8, intervalMs: -1 })).toThrow(/intervalMs .* got -1/);
    });
  });

  describe('one chunk in flight (acks)', () => {
    it('accumulates while a chunk is in flight and sends everything gathered on the ack', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const source = cold('abc 6ms d 100ms |', { a: 'a', b: 'b', c: 'c', d: 'd' });
        const acks = hot('-----x---x');
        // 'a' leaves at once; b, c wait for the ack at 5; 'd' at 9 arrives after the ack at 9 freed the gate.
        expectObservable(source.pipe(coalesceText({ maxBytes: 64, intervalMs: 0, acks }))).toBe(
          'a----x---d 100ms |',
          { a: 'a', x: 'bc', d: 'd' },
        );
      });
    });

    it('holds a full buffer until the ack, then sends it in chunks of maxBytes, one per ack', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const source = cold('ab 100ms |', { a: 'xx', b: 'abcdefgh' });
        const acks = hot('---x-x');
        expectObservable(source.pipe(coalesceText({ maxBytes: 4, intervalMs: 0, acks }))).toBe(
          'a--b-c 96ms |',
          { a: 'xx', b: 'abcd', c: 'efgh' },
        );
      });
    });

    it('completes only after the rest has left, one chunk per ack', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const source = cold('ab|', { a: 'first', b: 'second' });
        const acks = hot('-----x');
        expectObservable(source.pipe(coalesceText({ maxBytes: 64, intervalMs: 50, acks }))).toBe(
          'a----(b|)',
          {
            a: 'first',
            b: 'second',
          },
        );
      });
    });

    it('ignores acks while nothing is in flight', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const source = cold('--a-b|', { a: 'a', b: 'b' });
        const acks = hot('x---------x');
        expectObservable(source.pipe(coalesceText({ maxBytes: 64, intervalMs: 0, acks }))).toBe(
          '--a 7ms (b|)',
          { a: 'a', b: 'b' },
        );
      });
    });

    it('continues at once when the ack comes synchronously from downstream', () => {
      const acks = new Subject<void>();
      const seen: string[] = [];
      let completed = false;
      of('abcdefgh')
        .pipe(coalesceText({ maxBytes: 4, intervalMs: 0, acks }))
        .subscribe({
          next: (text) => {
            seen.push(text);
            acks.next();
          },
          complete: () => {
            completed = true;
          },
        });
      expect(seen).toEqual(['abcd', 'efgh']);
      expect(completed).toBe(true);
    });
  });
});
