DROP TABLE webpush_queue;
DROP TABLE webpush_topics;
DROP TABLE webpush_subscriptions;
