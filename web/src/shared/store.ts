import { useSyncExternalStore } from "react";

// A minimal observable state holder. The chat controllers live outside React (socket
// callbacks, timers and acknowledgements outlive renders), and React components read
// their state through useStore.

type Listener = () => void;

export class Store<T> {
  private state: T;
  private readonly listeners = new Set<Listener>();

  constructor(initial: T) {
    this.state = initial;
  }

  get = (): T => this.state;

  set(update: (current: T) => T): void {
    const next = update(this.state);
    if (next === this.state) return;
    this.state = next;
    for (const listener of this.listeners) listener();
  }

  patch(partial: Partial<T>): void {
    this.set((current) => ({ ...current, ...partial }));
  }

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}

export function useStore<T>(store: Store<T>): T {
  return useSyncExternalStore(store.subscribe, store.get, store.get);
}
