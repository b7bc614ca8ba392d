import { z, labelled, optionalShape } from './common.js';

const pineconeFields = {
  index: z.string().min(1).max(500),
  api_key: z.string().min(1).max(1000),
  api_environment: z.string().min(1).max(500),
};

export const PineconeVectorDatabaseParams = z.object({
  type: z.literal('vector_database_pinecone'),
  ...pineconeFields,
  ...labelled,
}).openapi('PineconeVectorDatabaseParams');

export const PineconeVectorDatabaseUpdateParams = z.object({
  type: z.literal('vector_database_pinecone'),
  ...optionalShape(pineconeFields),
  ...labelled,
}).openapi('PineconeVectorDatabaseUpdateParams');

export const VectorDatabaseSecrets: Record<string, string[][]> = { vector_database_pinecone: [['api_key']] };
export const VectorDatabaseDefaults: Record<string, Record<string, unknown>> = {
  vector_database_pinecone: { label: null, description: null },
};
