// A first-in first-out queue whose dequeue is O(1) amortised: it moves a
// head index instead of copying the array (Array.prototype.shift does), and
// compacts only once more than half of the array is spent. Dequeued slots
// are cleared at once, so the queue never keeps a served item alive.

export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
