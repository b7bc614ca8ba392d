import { z, labelled } from './common.js';

const num = () => z.number().nullable();

/** Vocode's five voice types plus the TTS vendors Fluents connects (Cartesia, Deepgram Aura, OpenAI). */
const voiceFields = {
  voice_azure: {
    voice_name: z.string().min(1).max(200),
    pitch: z.number().int().min(-100).max(100),
    rate: z.number().int().min(-100).max(200),
  },
  voice_rime: {
    speaker: z.string().min(1).max(200),
    speed_alpha: num(),
    model_id: z.enum(['mist', 'mistv2', 'v1', 'arcana']).nullable(),
  },
  voice_eleven_labs: {
    voice_id: z.string().min(1).max(200),
    stability: z.number().min(0).max(1).nullable(),
    similarity_boost: z.number().min(0).max(1).nullable(),
    api_key: z.string().max(500).nullable(),
    optimize_streaming_latency: z.number().int().min(0).max(4).nullable(),
    model_id: z.string().max(200).nullable(),
    experimental_input_streaming: z.boolean(),
  },
  voice_play_ht: {
    voice_id: z.string().min(1).max(500),
    api_user_id: z.string().max(500).nullable(),
    api_key: z.string().max(500).nullable(),
    version: z.enum(['1', '2']),
    speed: num(),
    quality: z.enum(['faster', 'draft', 'low', 'medium', 'high', 'premium']).nullable(),
    temperature: num(),
    top_p: num(),
    text_guidance: num(),
    voice_guidance: num(),
    experimental_remove_silence: z.boolean(),
  },
  voice_vocode: {
    voice_id: z.literal('joe'),
  },
  voice_cartesia: {
    voice_id: z.string().min(1).max(200),
    model_id: z.string().max(200).nullable(),
    language: z.string().max(20).nullable(),
    speed: z.union([z.number().min(-1).max(1), z.enum(['slowest', 'slow', 'normal', 'fast', 'fastest'])]).nullable(),
    emotion: z.array(z.string().max(100)).max(10).nullable(),
  },
  voice_deepgram: {
    model: z.string().min(1).max(200),
  },
  voice_openai: {
    voice: z.string().min(1).max(100),
    model: z.string().max(100).nullable(),
    speed: z.number().min(0.25).max(4).nullable(),
    instructions: z.string().max(4000).nullable(),
  },
} satisfies Record<string, z.ZodRawShape>;

export type VoiceType = keyof typeof voiceFields;
export const VOICE_TYPES = Object.keys(voiceFields) as VoiceType[];

const required: Record<VoiceType, string[]> = {
  voice_azure: ['voice_name'], voice_rime: ['speaker'], voice_eleven_labs: ['voice_id'], voice_play_ht: ['voice_id'],
  voice_vocode: ['voice_id'], voice_cartesia: ['voice_id'], voice_deepgram: ['model'], voice_openai: ['voice'],
};

const names: Record<VoiceType, string> = {
  voice_azure: 'AzureVoice', voice_rime: 'RimeVoice', voice_eleven_labs: 'ElevenLabsVoice', voice_play_ht: 'PlayHtVoice',
  voice_vocode: 'VocodeVoice', voice_cartesia: 'CartesiaVoice', voice_deepgram: 'DeepgramVoice', voice_openai: 'OpenAIVoice',
};

function variant(type: VoiceType, update: boolean) {
  const shape = voiceFields[type] as z.ZodRawShape;
  const fields = Object.fromEntries(Object.entries(shape).map(([k, s]) =>
    [k, update || !required[type].includes(k) ? (s as z.ZodType).optional() : s]));
  return z.object({ type: z.literal(type), ...fields, ...labelled })
    .openapi(`${names[type]}${update ? 'UpdateParams' : 'Params'}`);
}

type V = ReturnType<typeof variant>;
export const VoiceParams = z.discriminatedUnion('type', VOICE_TYPES.map((t) => variant(t, false)) as [V, ...V[]])
  .openapi('VoiceParamsRequest');
export const VoiceUpdateParams = z.discriminatedUnion('type', VOICE_TYPES.map((t) => variant(t, true)) as [V, ...V[]])
  .openapi('VoiceUpdateParamsRequest');

const defaults: Partial<Record<VoiceType, Record<string, unknown>>> = {
  voice_azure: { pitch: 0, rate: 15 },
  voice_eleven_labs: { experimental_input_streaming: false },
  voice_play_ht: { version: '2', experimental_remove_silence: false },
};

export function voiceDefaults(type: string): Record<string, unknown> {
  return { label: null, description: null, ...(defaults[type as VoiceType] ?? {}) };
}

export const VoiceSecrets: Record<string, string[][]> = {
  voice_eleven_labs: [['api_key']],
  voice_play_ht: [['api_key']],
};
