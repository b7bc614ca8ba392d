ALTER TABLE "calls" ADD COLUMN "media_connected_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "internal" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "numbers" ADD COLUMN "carrier_state" jsonb;