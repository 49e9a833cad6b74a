Feature: Bridge API — look-ups, by-id access, cleanup, store notices and events
  The bridge keeps a one-to-one mapping between client ids and session ids. Apps can read,
  change and destroy mapped sessions by id, but never create one outside HTTP.

  Background:
    Given a bridge with session cookie "app.sid" and a max age of 1 day, on a manual clock

  @B1
  Scenario: The mapping answers in both directions, and nothing for unknown ids
    Given Alice has a session holding n = 1
    Then Alice's client id is mapped to Alice's session id
    And an unknown client id is not mapped
    And an unknown session id is not mapped

  @B2 @H7
  Scenario: Reading a session by id shows its data and nothing else
    Given Alice has a session holding n = 1
    When the app reads the session of Alice's session id
    Then the call returns {"n":1}
    When the app reads the session of Alice's client id
    Then the call returns {"n":1}
    When the app reads the session of an unknown session id
    Then the call returns nothing
    When the app reads the session of an unknown client id
    Then the call returns nothing

  @B2
  Scenario: Setting a session by client id is seen by the browser's next request
    Given Alice has a session holding n = 1
    And the events so far are ignored
    When the app sets the session of Alice's client id to {"n":10}
    Then the call returns true
    And the bridge emitted exactly:
      | event      | client | session | is_new | is_init |
      | SessionSet | Alice  | Alice   | false  | false   |
    When Alice sends a request that increments n
    Then n is 11

  @B2
  Scenario: Setting a session to nothing destroys it
    Given Alice has a session holding n = 1
    And the events so far are ignored
    When the app sets the session of Alice's session id to nothing
    Then the call returns true
    And the store holds no record for Alice's session id
    And the bridge emitted exactly:
      | event          | client | session | is_new | is_init |
      | SessionDestroy | Alice  | Alice   |        |         |

  @B2
  Scenario: Setting an unmapped id is an error and creates nothing, even when a record exists
    Given the app has written a record "orphan" holding {"n":1} straight into the store
    When the app sets the session of an unknown session id to {"n":1}
    Then the call fails with NotMapped
    And the store holds no record for an unknown session id
    When the app sets the session of an unknown client id to {"n":1}
    Then the call fails with NotMapped
    When the app sets the session of session "orphan" to {"n":2}
    Then the call fails with NotMapped
    When the app reads the session of session "orphan"
    Then the call returns nothing
    And the bridge has 0 mapped sessions
    And the bridge emitted no event

  @B2
  Scenario: Destroying by id answers whether there was something to destroy
    Given Alice has a session holding n = 1
    When the app destroys the session of an unknown session id
    Then the call returns false
    When the app destroys the session of Alice's client id
    Then the call returns true
    When the app destroys the session of Alice's client id
    Then the call returns false
    When Alice sends a request that increments n
    Then n is 1

  @B3
  Scenario: Auto cleanup runs on the injected clock and can be stopped
    Given the auto cleanup worker is spawned
    And Alice has a session holding n = 1
    And the events so far are ignored
    When the app starts auto cleanup every 1 hour
    Then the call returns true
    When the worker is asleep until its next run
    And the clock advances by 25 hours
    And the worker has finished a cleanup run
    Then the bridge emitted exactly:
      | event          | client | session | is_new | is_init |
      | SessionDestroy | Alice  | Alice   |        |         |
      | Cleanup(1)     |        |         |        |         |
    When the app starts auto cleanup with the default interval
    Then the call returns false
    When the app stops auto cleanup
    Then the call returns true
    When the app stops auto cleanup
    Then the call returns false

  @B4
  Scenario: A write made straight into the store is announced with notify_store_set
    Given Alice has a session holding n = 1
    And the events so far are ignored
    When the app writes {"n":5} straight into the store under Alice's session id
    And the app calls notify_store_set for Alice's session id with is_new = false
    Then the bridge emitted exactly:
      | event      | client | session | is_new | is_init |
      | SessionSet | Alice  | Alice   | false  | false   |
    When Alice sends a request that increments n
    Then n is 6

  @B4 @B5
  Scenario: A record created straight in the store is announced as new and stays unmapped
    Given the app has written a record "direct" holding {"n":1} straight into the store
    When the app calls notify_store_set for session "direct" with is_new = true
    Then the bridge emitted exactly:
      | event      | client | session | is_new | is_init |
      | SessionSet | none   | direct  | true   | false   |
    And session "direct" is not mapped

  @B4
  Scenario: A record destroyed straight in the store is announced with notify_store_destroy
    Given Alice has a session holding n = 1
    And the events so far are ignored
    When the app destroys the record of Alice's session id straight in the store
    And the app calls notify_store_destroy for Alice's session id
    Then Alice's client id is not mapped
    And the bridge emitted exactly:
      | event          | client | session | is_new | is_init |
      | SessionDestroy | Alice  | Alice   |        |         |
    When Alice sends a request that reads the session
    Then the session is {}

  @B4
  Scenario: A cleanup made straight in the store is announced with notify_store_cleanup
    When the app calls notify_store_cleanup with 7
    Then the bridge emitted exactly:
      | event      | client | session | is_new | is_init |
      | Cleanup(7) |        |         |        |         |

  @B5
  Scenario: The SessionSet flags tell creation, attachment and update apart
    When Alice sends a request that sets n to 1
    And Alice sends a request that increments n
    And the server restarts
    And Alice sends a request that increments n
    And Alice sends a request that increments n
    Then n is 4
    And the bridge emitted exactly:
      | event      | client | session | is_new | is_init |
      | SessionSet | Alice  | Alice   | true   | true    |
      | SessionSet | Alice  | Alice   | false  | false   |
      | SessionSet | Alice  | Alice   | false  | true    |
      | SessionSet | Alice  | Alice   | false  | false   |
      | SessionSet | Alice  | Alice   | false  | false   |
