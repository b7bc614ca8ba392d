/**
 * The calls this process is running (it holds their media sockets). `calls/end` and carrier events that
 * must reach the conversation (the answering machine's beep) look here first; a call held by another node
 * is reached through its carrier instead (hanging up at the carrier ends the stream wherever it is).
 */
export interface LiveCall {
  callId: string;
  userId: string;
  /** Ends the conversation (the agent hangs up); resolves once the call is recorded as ended. */
  end(): Promise<void>;
  /** The carrier's answering-machine detection spoke (outbound calls). */
  machineDetected(result: 'human' | 'machine' | 'machine_end'): void;
  /** Resolves when the call has finished and its record is written. */
  readonly finished: Promise<void>;
}

export class LiveCalls {
  private calls = new Map<string, LiveCall>();
  private addListeners: ((callId: string) => void)[] = [];

  /** Calls `listener` with each call's id as it starts running here. */
  onAdd(listener: (callId: string) => void): void {
    this.addListeners.push(listener);
  }

  add(call: LiveCall): void {
    this.calls.set(call.callId, call);
    for (const l of this.addListeners) l(call.callId);
    void call.finished.finally(() => { if (this.calls.get(call.callId) === call) this.calls.delete(call.callId); });
  }

  get(callId: string): LiveCall | undefined {
    return this.calls.get(callId);
  }

  get size(): number {
    return this.calls.size;
  }

  /** Ends every call (shutdown): each is recorded as ended before the process goes. */
  async endAll(): Promise<void> {
    await Promise.allSettled([...this.calls.values()].map((c) => c.end()));
  }
}
