-- Pruning finished webhook rows (control/src/webhooks/prune.rs): delivered
-- deliveries and the events no delivery needs any more, once older than
-- `webhook_retention_secs`. These indexes let each batch find its oldest rows
-- without reading the queue or the dead letters.
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (finished_at)
    WHERE state = 'delivered';
CREATE INDEX webhook_events_created ON webhook_events (created_at);
