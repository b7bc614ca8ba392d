/**
 * What the words of a call tell about it, beyond the conversation itself:
 *  - do-not-call requests ("take me off your list", "stop calling me") for `run_do_not_call_detection`;
 *  - an answering machine or voicemail greeting ("leave a message after the tone") as a cue alongside the
 *    carrier's answering-machine detection, and a live "hello?" as a cue for a human.
 * Plain phrase rules on normalised text: they run on every caller line, cost nothing, and are explainable
 * in a call record. They err on the side of not firing: a missed cue leaves the conversation as it was.
 */

const normalise = (text: string) => ` ${text.toLowerCase().replace(/[’']/g, '').replace(/[^a-z0-9]+/g, ' ').trim()} `;

const DO_NOT_CALL: RegExp[] = [
  /\b(take|remove|delete|drop|scratch|get) (me|my (phone )?number|this number|us) (off|from|out of) (your|the|this|ur) (call(ing)? |contact |mailing |phone )?(list|database|records|system)\b/,
  /\b(put|add|place) (me|my (phone )?number|this number|us) (on|to) (your |the )?(do not call|dont call|no call) (list|registry)\b/,
  /\b(do not|dont|never|stop|quit) (ever )?(call(ing)?|contact(ing)?|ring(ing)?|phon(e|ing)) (me|us|this number|here)( again| anymore| any more| ever again)?\b/,
  /\b(i|we) (dont|do not) want (any )?(more |further )?(calls|to be called|to be contacted)\b/,
  /\bno (more )?(calls|solicitation)\b.*\b(please|thanks|thank you)\b/,
  /\bdo not call list\b/,
  /\bdont call list\b/,
];

/** True when the caller asks not to be called again. */
export function isDoNotCallRequest(text: string): boolean {
  const t = normalise(text);
  return DO_NOT_CALL.some((re) => re.test(t));
}

const MACHINE: RegExp[] = [
  /\b(leave|record) (me |us )?(a |your )?(brief |short |detailed )?(message|voicemail|name and number)\b/,
  /\b(after|at) the (tone|beep)\b/,
  /\b(is|are) (not available|unavailable|away from)\b/,
  /\b(cant|cannot|can not|am unable to|are unable to|is unable to) (come to|take|answer) (the|your|this) (phone|call)\b/,
  /\b(voice ?mail|mailbox|answering machine)\b/,
  /\byou have reached\b/,
  /\bthe (person|number|subscriber|party) you (are trying to reach|have dialed|called)\b/,
  /\bplease hang up and try again\b/,
];

/** True when a line sounds like a recorded greeting rather than a person. */
export function soundsLikeMachine(text: string): boolean {
  const t = normalise(text);
  return MACHINE.some((re) => re.test(t));
}

/** A short live greeting ("hello?", "yes, this is Anna", "who is this"): a person picked up. */
export function soundsLikeHuman(text: string): boolean {
  const t = normalise(text).trim();
  if (!t || soundsLikeMachine(text)) return false;
  const words = t.split(' ');
  if (words.length > 8) return false;
  return /^(hello|hi|hey|yes|yeah|yep|speaking|this is|who is|whos|good (morning|afternoon|evening)|hallo|hola|bonjour)\b/.test(t)
    || /\b(speaking|who is this|whos calling|who is calling)\b/.test(t);
}
