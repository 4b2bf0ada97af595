import { DynamicModule, Module } from '@nestjs/common';
import type { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { IdempotencyModule } from './idempotency/idempotency.module';
import { JsonApiModule } from './jsonapi/jsonapi.module';
import { MetricsModule } from './metrics/metrics.module';
import { PurchasesModule } from './purchases/purchases.module';
import { ReservationsModule } from './reservations/reservations.module';
import { TicketOptionsModule } from './ticket-options/ticket-options.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        JsonApiModule,
        IdempotencyModule,
        TicketOptionsModule,
        PurchasesModule,
        ReservationsModule,
        HealthModule,
        MetricsModule,
      ],
    };
  }
}
