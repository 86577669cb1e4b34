/**
 * A byte channel between two threads over shared memory: a ring of fixed-size slots, one
 * producer and one consumer, each waiting with `Atomics.waitAsync` so that neither blocks its
 * event loop. It carries layer bytes between the main thread and the inflate worker without
 * allocating: a consumer gets views of the shared slots, valid until it asks for the next one,
 * so the bytes never become garbage for the receiving thread's collector.
 */

const HEAD = 0; // slots written
const TAIL = 1; // slots read
const CLOSED = 2; // the producer is done
const CANCELED = 3; // either side gave up
// Bumped at every change the consumer (producer) may wait for. A side reads its counter before
// it looks at the state and waits on that value, so a change between the two is never missed.
const WAKE_CONSUMER = 4;
const WAKE_PRODUCER = 5;

/** The shared parts of a ring, as sent to the other thread. */
export interface RingMemory {
  ctrl: SharedArrayBuffer;
  lens: SharedArrayBuffer;
  data: SharedArrayBuffer;
  slotSize: number;
}

/** Thrown on either side once the other side has canceled. */
export class RingCanceled extends Error {
  constructor() {
    super("The layer byte channel was canceled");
  }
}

/** One end (either end) of a slot ring. */
export class SlotRing {
  readonly memory: RingMemory;
  readonly #ctrl: Int32Array;
  readonly #lens: Int32Array;
  readonly #data: Buffer;
  readonly #slots: number;
  readonly #slotSize: number;

  /** A new ring of `slots` slots of `slotSize` bytes. */
  static create(slots: number, slotSize: number): SlotRing {
    return new SlotRing({
      ctrl: new SharedArrayBuffer(4 * 6),
      lens: new SharedArrayBuffer(4 * slots),
      data: new SharedArrayBuffer(slots * slotSize),
      slotSize,
    });
  }

  constructor(memory: RingMemory) {
    this.memory = memory;
    this.#ctrl = new Int32Array(memory.ctrl);
    this.#lens = new Int32Array(memory.lens);
    this.#data = Buffer.from(memory.data);
    this.#slotSize = memory.slotSize;
    this.#slots = this.#lens.length;
  }

  get canceled(): boolean {
    return Atomics.load(this.#ctrl, CANCELED) !== 0;
  }

  /** Producer: copies `src` into the ring, waiting for free slots. */
  async write(src: Uint8Array): Promise<void> {
    let off = 0;
    while (off < src.length) {
      const slot = await this.reserve();
      const n = Math.min(this.#slotSize, src.length - off);
      slot.set(src.subarray(off, off + n));
      off += n;
      this.publish(n);
    }
  }

  /**
   * Producer, without a copy: the next free slot, to fill in place (waiting for one). The same
   * slot is returned until `publish` hands it to the consumer.
   */
  async reserve(): Promise<Buffer> {
    const head = Atomics.load(this.#ctrl, HEAD);
    for (;;) {
      const seq = Atomics.load(this.#ctrl, WAKE_PRODUCER);
      if (this.canceled) throw new RingCanceled();
      if (head - Atomics.load(this.#ctrl, TAIL) < this.#slots) break;
      const w = Atomics.waitAsync(this.#ctrl, WAKE_PRODUCER, seq);
      if (w.async) await w.value;
    }
    const slot = head % this.#slots;
    return this.#data.subarray(slot * this.#slotSize, (slot + 1) * this.#slotSize);
  }

  /** Producer: the slot `reserve` gave holds `length` bytes for the consumer now. */
  publish(length: number): void {
    const head = Atomics.load(this.#ctrl, HEAD);
    this.#lens[head % this.#slots] = length;
    Atomics.store(this.#ctrl, HEAD, head + 1);
    this.#wake(WAKE_CONSUMER);
  }

  /** Consumer: whether a slot is ready to be read now (or the ring is closed or canceled). */
  get ready(): boolean {
    return Atomics.load(this.#ctrl, TAIL) < Atomics.load(this.#ctrl, HEAD) || Atomics.load(this.#ctrl, CLOSED) !== 0 || this.canceled;
  }

  #wake(index: number): void {
    Atomics.add(this.#ctrl, index, 1);
    Atomics.notify(this.#ctrl, index);
  }

  /** Producer: no more bytes. */
  close(): void {
    Atomics.store(this.#ctrl, CLOSED, 1);
    this.#wake(WAKE_CONSUMER);
  }

  /** Either side: stop; the other side's next wait or step throws `RingCanceled`. */
  cancel(): void {
    Atomics.store(this.#ctrl, CANCELED, 1);
    this.#wake(WAKE_CONSUMER);
    this.#wake(WAKE_PRODUCER);
  }

  /**
   * Consumer: the bytes in order, as views of the shared slots. A view is only valid until the
   * next step of the iteration, when its slot is handed back to the producer.
   */
  async *read(): AsyncGenerator<Buffer> {
    for (;;) {
      const seq = Atomics.load(this.#ctrl, WAKE_CONSUMER);
      if (this.canceled) throw new RingCanceled();
      const head = Atomics.load(this.#ctrl, HEAD);
      const tail = Atomics.load(this.#ctrl, TAIL);
      if (tail < head) {
        const slot = tail % this.#slots;
        const len = this.#lens[slot] ?? 0;
        yield this.#data.subarray(slot * this.#slotSize, slot * this.#slotSize + len);
        Atomics.store(this.#ctrl, TAIL, tail + 1);
        this.#wake(WAKE_PRODUCER);
        continue;
      }
      if (Atomics.load(this.#ctrl, CLOSED) !== 0) {
        // Closed after its last slot was written: anything written before is visible now.
        if (Atomics.load(this.#ctrl, HEAD) === tail) return;
        continue;
      }
      const w = Atomics.waitAsync(this.#ctrl, WAKE_CONSUMER, seq);
      if (w.async) await w.value;
    }
  }
}
