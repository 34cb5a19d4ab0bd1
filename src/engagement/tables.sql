------------------------------------------------------------------------------------
-- 0.2.0: engagement playbooks (docs/playbooks.md), in four files: their tables (here),
-- checks of what users write into them (checks.sql), the scheduler the engine runs
-- (schedule.sql) and what applications call and read (actions.sql, views.sql).
------------------------------------------------------------------------------------

-- Channels actions go out on. Quiet hours, when set, are in the customer's time zone
-- (lifecycle.contacts) or else the source's: no action on this channel is due between
-- quiet_from and quiet_until (a window may wrap past midnight).
CREATE TABLE lifecycle.channels (
    channel     text PRIMARY KEY,
    quiet_from  time,
    quiet_until time,
    description text,
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE lifecycle.channels IS 'Channels actions go out on, with their quiet hours';
INSERT INTO lifecycle.channels VALUES
    ('email', NULL, NULL, 'E-mail', true),
    ('sms', '21:00', '09:00', 'Text message; quiet at night', true),
    ('push', '22:00', '08:00', 'Mobile push notification; quiet at night', true),
    ('phone', '19:00', '09:00', 'A call from a person; office hours only', true);

-- Playbooks: what a trigger sets in motion. Trigger 'stage': the customer entered one of
-- to_stages (optionally only in some RFM segments or value tiers, or with a churn risk
-- of at least min_churn_risk); 'birthday': the customer's birthday (lifecycle.contacts);
-- 'anniversary': the anniversary of the first purchase. A customer is enrolled at most
-- once per playbook and episode: per purchase history for stage triggers (enrolled again
-- only after buying again), per date for date triggers. A share holdout_share of the
-- customers it would enrol, chosen by a hash of playbook and customer, is held out:
-- logged, never contacted, and compared with the others (view playbook_uplift).
-- A purchase within attribution_days after the series' last step counts as a
-- reactivation. Shipped presets are disabled: nothing is scheduled until a user says so.
CREATE TABLE lifecycle.playbooks (
    name             text PRIMARY KEY,
    trigger          text NOT NULL,
    to_stages        text[],
    segments         text[],
    value_tiers      text[],
    min_churn_risk   double precision,
    stop_on          text[] NOT NULL DEFAULT '{purchase,reply,click,opt_out}',
    holdout_share    double precision NOT NULL DEFAULT 0.1,
    attribution_days integer NOT NULL DEFAULT 30,
    enabled          boolean NOT NULL DEFAULT true,
    description      text,
    builtin          boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE lifecycle.playbooks IS
    'What a trigger (a stage entered, a birthday, an anniversary) sets in motion';

-- The steps of a playbook, in order. Each is due `delay` after the previous step (the
-- first: after the trigger, at midnight of its day in the customer's time zone). A
-- 'message' step becomes an action on its channel; a 'sunset' step, reached after the
-- grace period of silence that its delay is, suppresses the channel (an opt-out with
-- via 'sunset') and becomes a 'sunset' action. A step that would break the contact
-- policy waits for the earliest allowed time, or with when_capped = 'skip' is skipped.
CREATE TABLE lifecycle.playbook_steps (
    playbook    text NOT NULL REFERENCES lifecycle.playbooks ON UPDATE CASCADE ON DELETE CASCADE,
    step        integer NOT NULL,
    delay       interval NOT NULL,
    channel     text NOT NULL REFERENCES lifecycle.channels ON UPDATE CASCADE,
    message_key text NOT NULL,
    kind        text NOT NULL DEFAULT 'message',
    when_capped text NOT NULL DEFAULT 'wait',
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (playbook, step)
);
COMMENT ON TABLE lifecycle.playbook_steps IS
    'Steps of the playbooks: delay after the previous step, channel, message, kind';

INSERT INTO lifecycle.playbooks (name, trigger, to_stages, stop_on, holdout_share,
                                 attribution_days, enabled, description, builtin) VALUES
    ('winback', 'stage', '{inactive,lapsed}', '{purchase,reply,click,opt_out}', 0.1, 30, false,
     'Three messages to customers drifting away, the last by SMS; sunset after two weeks of silence', true),
    ('onboarding', 'stage', '{new}', '{reply,click,opt_out}', 0.1, 30, false,
     'Welcome series for first-time buyers', true),
    ('birthday', 'birthday', NULL, '{opt_out}', 0, 7, false,
     'A greeting on the customer''s birthday, once a year', true);
INSERT INTO lifecycle.playbook_steps (playbook, step, delay, channel, message_key, kind, builtin) VALUES
    ('winback', 1, '0 days', 'email', 'winback_1', 'message', true),
    ('winback', 2, '7 days', 'email', 'winback_2', 'message', true),
    ('winback', 3, '7 days', 'sms', 'winback_3', 'message', true),
    ('winback', 4, '7 days', 'email', 'last_notice', 'message', true),
    ('winback', 5, '14 days', 'email', 'sunset', 'sunset', true),
    ('onboarding', 1, '1 day', 'email', 'welcome', 'message', true),
    ('onboarding', 2, '6 days', 'email', 'getting_started', 'message', true),
    ('onboarding', 3, '14 days', 'email', 'second_order_offer', 'message', true),
    ('birthday', 1, '0 days', 'email', 'birthday_greeting', 'message', true);

-- Caps and cadence: at most max_messages per `per` on `channel` (NULL: all channels
-- together), and at least min_gap between two messages. A rule may apply only to
-- customers in one stage or value tier (lifecycle.value_tier). Every rule that applies
-- must hold.
CREATE TABLE lifecycle.contact_policy (
    name         text PRIMARY KEY,
    channel      text REFERENCES lifecycle.channels ON UPDATE CASCADE ON DELETE CASCADE,
    stage        text,
    value_tier   text,
    max_messages integer,
    per          interval,
    min_gap      interval,
    builtin      boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE lifecycle.contact_policy IS
    'Contact caps per channel and period, and the minimum gap between messages';
INSERT INTO lifecycle.contact_policy VALUES
    ('any_channel_gap', NULL, NULL, NULL, NULL, NULL, '1 day', true),
    ('email_weekly', 'email', NULL, NULL, 3, '7 days', NULL, true),
    ('sms_monthly', 'sms', NULL, NULL, 2, '30 days', NULL, true);

-- What the engine knows of a customer beyond the orders: a time zone (for quiet hours
-- and the time of day steps fall due) and a birthday. Written by applications.
CREATE TABLE lifecycle.contacts (
    source_id integer NOT NULL,
    customer  text COLLATE "C" NOT NULL,
    time_zone text,
    birthday  date,
    PRIMARY KEY (source_id, customer)
);
CREATE INDEX contacts_birthday ON lifecycle.contacts
    (source_id, (extract(month FROM birthday) * 100 + extract(day FROM birthday)))
    WHERE birthday IS NOT NULL;
COMMENT ON TABLE lifecycle.contacts IS 'Time zone and birthday of customers, for playbooks';

-- Consent per customer and channel: no row, or granted = false, means nothing is due on
-- the channel. consent_log keeps every change (the audit trail).
CREATE TABLE lifecycle.consent (
    source_id  integer NOT NULL,
    customer   text COLLATE "C" NOT NULL,
    channel    text NOT NULL,
    granted    boolean NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    via        text,
    PRIMARY KEY (source_id, customer, channel)
);
COMMENT ON TABLE lifecycle.consent IS 'Current opt-in/opt-out per customer and channel';
CREATE TABLE lifecycle.consent_log (
    id         bigserial PRIMARY KEY,
    source_id  integer NOT NULL,
    customer   text COLLATE "C" NOT NULL,
    channel    text NOT NULL,
    granted    boolean NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    via        text
);
CREATE INDEX ON lifecycle.consent_log (source_id, customer, id);
COMMENT ON TABLE lifecycle.consent_log IS 'Every opt-in and opt-out, with time and source';

-- A customer's run through a playbook. `episode`: what makes it one (the last purchase
-- before it for stage triggers, the date for date triggers). Purchases after
-- counts_after and up to attribution_until count as its reactivation (converted_on, the
-- first; revenue, their amounts). next_step is due at next_due_at while running.
CREATE TABLE lifecycle.enrollments (
    id                bigserial PRIMARY KEY,
    playbook          text NOT NULL,
    source_id         integer NOT NULL,
    customer          text COLLATE "C" NOT NULL,
    episode           date NOT NULL,
    started_on        date NOT NULL,
    transition_id     bigint,
    holdout           boolean NOT NULL,
    status            text NOT NULL,
    next_step         integer,
    step_time         timestamptz,      -- next_step's own time: the previous step's + delay
    next_due_at       timestamptz,      -- when it is looked at: step_time, or later if waiting
    waiting           text,             -- why next_step waits past its own time
    counts_after      date NOT NULL,
    attribution_until date NOT NULL,
    converted_on      date,
    revenue           double precision,
    ended_at          timestamptz,
    enrolled_at       timestamptz NOT NULL DEFAULT now(),
    -- customer first: the same index finds a customer's enrolments (purchases, opt-outs)
    UNIQUE (source_id, customer, playbook, episode),
    CHECK (status IN ('running', 'held_out', 'finished', 'converted', 'engaged', 'opted_out',
                      'sunset'))
);
CREATE INDEX enrollments_due ON lifecycle.enrollments (next_due_at) WHERE status = 'running';
COMMENT ON TABLE lifecycle.enrollments IS
    'Customers in playbooks: held out or treated, the next step, the outcome';

-- The queue applications read: one row per message (or sunset) to send. An action is
-- created 'due'; claim_actions() hands it to one consumer until claim_expires; the
-- consumer reports outcomes (report_action). `scheduled_for` is the step's own time,
-- due_at when the contact policy let it go, `reason` why they differ.
CREATE TABLE lifecycle.actions (
    id            bigserial PRIMARY KEY,
    enrollment_id bigint NOT NULL,
    playbook      text NOT NULL,
    step          integer NOT NULL,
    source_id     integer NOT NULL,
    customer      text COLLATE "C" NOT NULL,
    channel       text NOT NULL,
    message_key   text NOT NULL,
    kind          text NOT NULL,
    scheduled_for timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    reason        text,
    status        text NOT NULL DEFAULT 'due',
    attempts      integer NOT NULL DEFAULT 0,
    claimed_by    text,
    claim_expires timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (status IN ('due', 'claimed', 'sent', 'delivered', 'opened', 'clicked', 'replied',
                      'failed', 'bounced', 'canceled'))
);
CREATE INDEX actions_claimable ON lifecycle.actions (due_at, id) WHERE status IN ('due', 'claimed');
CREATE INDEX ON lifecycle.actions (source_id, customer, due_at);
CREATE INDEX ON lifecycle.actions (enrollment_id);
COMMENT ON TABLE lifecycle.actions IS
    'Actions due: messages and sunsets for the application to carry out and report on';

-- Every outcome reported, once per attempt (a second report of the same outcome for the
-- same attempt is ignored).
CREATE TABLE lifecycle.action_outcomes (
    action_id   bigint NOT NULL,
    attempt     integer NOT NULL,
    outcome     text NOT NULL,
    reported_at timestamptz NOT NULL DEFAULT now(),
    consumer    text,
    detail      text,
    PRIMARY KEY (action_id, attempt, outcome)
);
COMMENT ON TABLE lifecycle.action_outcomes IS 'Outcomes reported for actions, one row per outcome';

-- What happened in a run through a playbook besides actions: held out, a step skipped
-- or postponed (and why), stopped, converted, sunset.
CREATE TABLE lifecycle.playbook_log (
    id            bigserial PRIMARY KEY,
    enrollment_id bigint NOT NULL,
    step          integer,
    event         text NOT NULL,
    detail        text,
    logged_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON lifecycle.playbook_log (enrollment_id);
COMMENT ON TABLE lifecycle.playbook_log IS
    'Enrolments, holdouts, skipped and postponed steps (with reasons), stops and sunsets';

-- Why customers left: the codes, and what was recorded per customer.
CREATE TABLE lifecycle.churn_reasons (
    code        text PRIMARY KEY,
    description text,
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE lifecycle.churn_reasons IS 'Reason codes for customers leaving';
INSERT INTO lifecycle.churn_reasons VALUES
    ('price', 'Too expensive, or found it cheaper', true),
    ('quality', 'Product quality', true),
    ('service', 'Service or support', true),
    ('delivery', 'Delivery: late, costly, damaged', true),
    ('competitor', 'Moved to a competitor', true),
    ('no_need', 'No longer needs the product', true),
    ('moved', 'Moved away', true),
    ('other', 'Anything else: see the note', true);
CREATE TABLE lifecycle.customer_reasons (
    id          bigserial PRIMARY KEY,
    source_id   integer NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    code        text NOT NULL REFERENCES lifecycle.churn_reasons ON UPDATE CASCADE,
    note        text,
    via         text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON lifecycle.customer_reasons (source_id, customer, id);
COMMENT ON TABLE lifecycle.customer_reasons IS 'Why a customer left, from a survey or a call';

-- Where the date triggers have been looked at up to (per playbook).
CREATE TABLE lifecycle.playbook_dates (
    playbook  text PRIMARY KEY REFERENCES lifecycle.playbooks ON UPDATE CASCADE ON DELETE CASCADE,
    done_upto date NOT NULL
);

-- pg_dump keeps what users wrote; shipped rows only when a user changed them.
SELECT pg_catalog.pg_extension_config_dump('lifecycle.channels', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.playbooks', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.playbook_steps', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.contact_policy', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.churn_reasons', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.contacts', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.consent', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.consent_log', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.consent_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.enrollments', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.enrollments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.actions', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.actions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.action_outcomes', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.playbook_log', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.playbook_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.customer_reasons', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.customer_reasons_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.playbook_dates', '');
