import { z } from '../../domain/common.js';
import type { Store } from '../../store/store.js';
import type { RouteDef } from '../routes.js';

export function usageRoutes(store: Store): RouteDef[] {
  const Usage = z.object({
    user_id: z.string(), plan_type: z.enum(['plan_free', 'plan_developer', 'plan_enterprise', 'plan_unlimited']),
    monthly_usage_minutes: z.number().int(), monthly_usage_limit_minutes: z.number().int().nullable(),
  }).openapi('Usage');
  return [{
    method: 'get', path: '/v1/usage', operationId: 'get_usage', summary: 'Get usage', tag: 'usage', response: Usage, status: 200,
    handler: async ({ userId }) => {
      const user = await store.users.getUser(store.db, userId);
      return {
        user_id: userId, plan_type: user?.planType ?? 'plan_unlimited',
        monthly_usage_minutes: await store.calls.monthlyMinutes(store.db, userId),
        monthly_usage_limit_minutes: user?.monthlyUsageLimitMinutes ?? null,
      };
    },
  }];
}
