import type { Clock } from '../../src/engine/clock.js';
import type { FakeTransport } from '../../src/engine/testkit/fakeTransport.js';
import type { HandOff } from '../../src/engine/types.js';

export interface CarrierAnswers {
  transfer?: HandOff;
  hold?: HandOff;
  conference?: HandOff;
  /** How long each command takes at the carrier (a REST call), on the transport's clock. */
  takesMs?: number;
}

/**
 * `transport`, whose transfer, hold and conference answer as a carrier's would: `handed_off` when the caller
 * has left the agent (Twilio's transfer or hold), `stays` when the agent is still on the line with them.
 */
export function answering(transport: FakeTransport, clock: Clock, answers: CarrierAnswers): FakeTransport {
  const transfer = transport.transfer.bind(transport);
  const setHold = transport.setHold.bind(transport);
  const addToConference = transport.addToConference.bind(transport);
  const answer = async (command: Promise<void>, a: HandOff | undefined): Promise<HandOff | undefined> => {
    await command;
    if (answers.takesMs) await new Promise((r) => clock.setTimeout(() => r(undefined), answers.takesMs!));
    return a;
  };
  return Object.assign(transport, {
    transfer: (to: string) => answer(transfer(to), answers.transfer),
    setHold: (on: boolean) => answer(setHold(on), answers.hold),
    addToConference: (to: string, opts: { placePrimaryOnHold: boolean }) => answer(addToConference(to, opts), answers.conference),
  });
}
