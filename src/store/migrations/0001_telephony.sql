DROP INDEX "calls_telephony_id_idx";--> statement-breakpoint
DROP INDEX "numbers_number_uq";--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "media_connected_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "internal" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "numbers" ADD COLUMN "carrier_state" jsonb;--> statement-breakpoint
CREATE UNIQUE INDEX "calls_telephony_uq" ON "calls" USING btree ("telephony_provider","telephony_id");--> statement-breakpoint
CREATE UNIQUE INDEX "numbers_number_active_uq" ON "numbers" USING btree ("number") WHERE "numbers"."active";--> statement-breakpoint
CREATE INDEX "numbers_number_idx" ON "numbers" USING btree ("number");