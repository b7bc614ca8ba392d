/** The vendors whose adapters are built on the vendor's SDK, loaded on first use unless preloaded (see index.ts). */
export const SDK_VENDORS = ['google_speech', 'azure_speech', 'anthropic', 'google'] as const;
export type SdkVendor = (typeof SDK_VENDORS)[number];
