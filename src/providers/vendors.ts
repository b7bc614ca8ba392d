/**
 * Every vendor Switchboard talks to, in one table: the account-connection type and credential fields a
 * user stores for it, the platform-default environment variables, and the base URL with its override.
 * Credential resolution, the README's vendor table and the tests all read from here.
 */

export type VendorId =
  | 'openai' | 'azure_openai' | 'anthropic' | 'google' | 'deepseek' | 'togetherai' | 'groq' | 'openai_compatible'
  | 'deepgram' | 'assemblyai' | 'gladia' | 'azure_speech' | 'google_speech'
  | 'elevenlabs' | 'cartesia' | 'rime' | 'playht';

export interface VendorSpec {
  title: string;
  /** The account-connection type whose credentials this vendor uses. */
  connection: string;
  /** Credential field holding the API key; `null` when the vendor may run keyless (local servers). */
  keyField: string;
  keyEnv: string;
  /** Other credential fields the adapter needs: extra name → credential field and env default. */
  extras?: Record<string, { field: string; env?: string; required?: boolean; fallback?: string }>;
  baseUrlEnv: string;
  /** Default base URL; `{region}` is filled from the `region` extra. */
  defaultBaseUrl: string;
  /** A credential field that, when set on the connection, overrides the base URL (OpenAI-compatible servers). */
  baseUrlField?: string;
  /** Runs without a key (a local OpenAI-compatible server, for one). */
  keyOptional?: boolean;
  kinds: ReadonlyArray<'stt' | 'llm' | 'tts'>;
}

export const VENDORS: Record<VendorId, VendorSpec> = {
  openai: {
    title: 'OpenAI', connection: 'account_connection_openai', keyField: 'openai_api_key', keyEnv: 'OPENAI_API_KEY',
    extras: { organization: { field: 'openai_organization', env: 'OPENAI_ORG_ID' } },
    baseUrlEnv: 'OPENAI_BASE_URL', defaultBaseUrl: 'https://api.openai.com/v1', baseUrlField: 'base_url',
    kinds: ['llm', 'stt', 'tts'],
  },
  azure_openai: {
    title: 'Azure OpenAI', connection: 'account_connection_azure_llm', keyField: 'azure_openai_api_key', keyEnv: 'AZURE_OPENAI_API_KEY',
    extras: {
      api_version: { field: 'api_version', env: 'AZURE_OPENAI_API_VERSION', fallback: '2024-10-21' },
      deployment: { field: 'deployment_name', env: 'AZURE_OPENAI_DEPLOYMENT' },
    },
    baseUrlEnv: 'AZURE_OPENAI_ENDPOINT', defaultBaseUrl: '', baseUrlField: 'azure_openai_endpoint',
    kinds: ['llm'],
  },
  anthropic: {
    title: 'Anthropic', connection: 'account_connection_anthropic', keyField: 'anthropic_api_key', keyEnv: 'ANTHROPIC_API_KEY',
    baseUrlEnv: 'ANTHROPIC_BASE_URL', defaultBaseUrl: 'https://api.anthropic.com', kinds: ['llm'],
  },
  google: {
    title: 'Google Gemini', connection: 'account_connection_google', keyField: 'google_api_key', keyEnv: 'GEMINI_API_KEY',
    baseUrlEnv: 'GEMINI_BASE_URL', defaultBaseUrl: 'https://generativelanguage.googleapis.com', kinds: ['llm'],
  },
  deepseek: {
    title: 'DeepSeek', connection: 'account_connection_deepseek', keyField: 'deepseek_api_key', keyEnv: 'DEEPSEEK_API_KEY',
    baseUrlEnv: 'DEEPSEEK_BASE_URL', defaultBaseUrl: 'https://api.deepseek.com', kinds: ['llm'],
  },
  togetherai: {
    title: 'Together AI', connection: 'account_connection_togetherai', keyField: 'togetherai_api_key', keyEnv: 'TOGETHER_API_KEY',
    baseUrlEnv: 'TOGETHER_BASE_URL', defaultBaseUrl: 'https://api.together.xyz/v1', kinds: ['llm'],
  },
  groq: {
    title: 'Groq', connection: 'account_connection_groq', keyField: 'groq_api_key', keyEnv: 'GROQ_API_KEY',
    baseUrlEnv: 'GROQ_BASE_URL', defaultBaseUrl: 'https://api.groq.com/openai/v1', kinds: ['llm'],
  },
  openai_compatible: {
    title: 'OpenAI-compatible server (Ollama, vLLM, LM Studio…)', connection: 'account_connection_openai',
    keyField: 'openai_api_key', keyEnv: 'OPENAI_COMPATIBLE_API_KEY', keyOptional: true,
    baseUrlEnv: 'OPENAI_COMPATIBLE_BASE_URL', defaultBaseUrl: '', baseUrlField: 'base_url', kinds: ['llm'],
  },
  deepgram: {
    title: 'Deepgram', connection: 'account_connection_deepgram', keyField: 'deepgram_api_key', keyEnv: 'DEEPGRAM_API_KEY',
    baseUrlEnv: 'DEEPGRAM_BASE_URL', defaultBaseUrl: 'https://api.deepgram.com', kinds: ['stt', 'tts'],
  },
  assemblyai: {
    title: 'AssemblyAI', connection: 'account_connection_assemblyai', keyField: 'assemblyai_api_key', keyEnv: 'ASSEMBLYAI_API_KEY',
    baseUrlEnv: 'ASSEMBLYAI_STREAMING_BASE_URL', defaultBaseUrl: 'wss://streaming.assemblyai.com', kinds: ['stt'],
  },
  gladia: {
    title: 'Gladia', connection: 'account_connection_gladia', keyField: 'gladia_api_key', keyEnv: 'GLADIA_API_KEY',
    baseUrlEnv: 'GLADIA_BASE_URL', defaultBaseUrl: 'https://api.gladia.io', kinds: ['stt'],
  },
  azure_speech: {
    title: 'Azure AI Speech', connection: 'account_connection_azure_speech', keyField: 'azure_speech_key', keyEnv: 'AZURE_SPEECH_KEY',
    extras: { region: { field: 'azure_speech_region', env: 'AZURE_SPEECH_REGION', required: true } },
    // One host per service; the STT host is derived from this by the adapter (stt. ↔ tts.).
    baseUrlEnv: 'AZURE_SPEECH_BASE_URL', defaultBaseUrl: 'https://{region}.api.cognitive.microsoft.com', kinds: ['stt', 'tts'],
  },
  google_speech: {
    title: 'Google Cloud Speech-to-Text', connection: 'account_connection_google', keyField: 'google_api_key', keyEnv: 'GOOGLE_API_KEY',
    extras: {
      service_account_json: { field: 'service_account_json', env: 'GOOGLE_APPLICATION_CREDENTIALS_JSON' },
      project_id: { field: 'project_id', env: 'GOOGLE_CLOUD_PROJECT' },
    },
    baseUrlEnv: 'GOOGLE_SPEECH_BASE_URL', defaultBaseUrl: 'https://speech.googleapis.com', kinds: ['stt'],
  },
  elevenlabs: {
    title: 'ElevenLabs', connection: 'account_connection_elevenlabs', keyField: 'elevenlabs_api_key', keyEnv: 'ELEVENLABS_API_KEY',
    baseUrlEnv: 'ELEVENLABS_BASE_URL', defaultBaseUrl: 'https://api.elevenlabs.io', kinds: ['tts'],
  },
  cartesia: {
    title: 'Cartesia', connection: 'account_connection_cartesia', keyField: 'cartesia_api_key', keyEnv: 'CARTESIA_API_KEY',
    baseUrlEnv: 'CARTESIA_BASE_URL', defaultBaseUrl: 'https://api.cartesia.ai', kinds: ['tts'],
  },
  rime: {
    title: 'Rime', connection: 'account_connection_rime', keyField: 'rime_api_key', keyEnv: 'RIME_API_KEY',
    baseUrlEnv: 'RIME_BASE_URL', defaultBaseUrl: 'https://users.rime.ai', kinds: ['tts'],
  },
  playht: {
    title: 'PlayHT', connection: 'account_connection_playht', keyField: 'playht_api_key', keyEnv: 'PLAYHT_API_KEY',
    extras: { user_id: { field: 'playht_user_id', env: 'PLAYHT_USER_ID', required: true } },
    baseUrlEnv: 'PLAYHT_BASE_URL', defaultBaseUrl: 'https://api.play.ht', kinds: ['tts'],
  },
};

/** The base URL without a trailing slash, `ws(s)://` for `http(s)://` when asked. */
export function toWebSocketUrl(base: string): string {
  return base.replace(/^http(s?):\/\//, 'ws$1://');
}

export function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
