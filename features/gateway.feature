Feature: Gateway — expiry, change detection, destroy and cleanup over the store
  The gateway sits between the bridge and the store. Time comes only from the injected
  clock (GW5), so these scenarios move a manual clock instead of sleeping.

  Background:
    Given a bridge with session cookie "app.sid" and a max age of 1 day, on a manual clock

  @GW1 @GW5
  Scenario Outline: A session lives exactly its max age, not one millisecond more
    Given Alice has a session holding n = 1
    When the clock advances by <elapsed>
    And Alice sends a request that reads the session
    Then the session is <seen>

    Examples:
      | elapsed      | seen    |
      | 86399999 ms  | {"n":1} |
      | 1 day        | {}      |

  @GW1 @H7
  Scenario: An expired session is destroyed when it is read, and the browser starts afresh
    Given Alice has a session holding n = 1
    And the events so far are ignored
    When the clock advances by 1 day
    And Alice sends a request that increments n
    Then n is 1
    And Alice got a new session id
    And the store holds no record for Alice's previous session id
    And the bridge emitted exactly:
      | event          | client | session          | is_new | is_init |
      | SessionDestroy | Alice  | Alice (previous) |        |         |
      | SessionSet     | Alice  | Alice            | true   | true    |

  @GW1 @X2
  Scenario: A record that is not a JSON object is dropped, reported, and the rest keeps working
    Given Alice has a session holding n = 1
    And Bob has a session holding n = 10
    And the record of Alice's session id is overwritten in the store with the text "[not an object]"
    And the events so far are ignored
    When Alice sends a request that reads the session
    Then the request succeeded
    And the session is {}
    And the store holds no record for Alice's session id
    And the bridge emitted exactly:
      | event          | client | session | is_new | is_init |
      | SessionDestroy | Alice  | Alice   |        |         |
    When Alice sends a request that increments n
    Then n is 1
    When Bob sends a request that increments n
    Then n is 11

  @GW2
  Scenario: Writing the text that is already stored writes nothing
    Given Alice has a session holding n = 1
    And the events so far are ignored
    When Alice sends a request that sets n to 1
    Then the request wrote nothing to the store
    And the response sets no session cookie
    When Alice sends a request that sets n to 2 and then back to 1
    Then n is 1
    And the request wrote nothing to the store
    When the app sets the session of Alice's session id to {"n":1}
    Then the call returns true
    And the call wrote nothing to the store
    And the bridge emitted no event

  @GW2
  Scenario: A change rewrites the record with a fresh expiry of now + max age
    Given Alice has a session holding n = 1
    When the clock advances by 16 hours
    And Alice sends a request that increments n
    Then the request wrote to the store once
    When the clock advances by 16 hours
    And Alice sends a request that reads the session
    Then the session is {"n":2}

  @GW3 @B2
  Scenario: Destroying a session removes its record and its mapping and says so
    Given Alice has a session holding n = 1
    And the events so far are ignored
    When the app destroys the session of Alice's session id
    Then the call returns true
    And the store holds no record for Alice's session id
    And Alice's client id is not mapped
    And Alice's session id is not mapped
    And the bridge emitted exactly:
      | event          | client | session | is_new | is_init |
      | SessionDestroy | Alice  | Alice   |        |         |

  @GW4 @B3
  Scenario: Cleanup destroys every expired record and reports how many
    Given Alice has a session holding n = 1
    And Bob has a session holding n = 1
    And Carol has a session holding n = 1
    When the clock advances by 12 hours
    And Dave sends a request that sets n to 1
    And the clock advances by 12 hours
    And the events so far are ignored
    And the app runs a cleanup
    Then the call returns 3
    And the bridge emitted, in any order:
      | event          | client | session | is_new | is_init |
      | SessionDestroy | Alice  | Alice   |        |         |
      | SessionDestroy | Bob    | Bob     |        |         |
      | SessionDestroy | Carol  | Carol   |        |         |
      | Cleanup(3)     |        |         |        |         |
    And the bridge has 1 mapped session
    And Dave's client id is mapped to Dave's session id
    When Dave sends a request that increments n
    Then n is 2

  @ST3 @H7
  Scenario: Sessions swept silently by the store are still announced destroyed, each once
    LiveStore sweeps up to 8 expired records on every write, which may be more than the
    bridge retires per write; a session found gone later is announced when it is looked up.
    Given Alice has a session holding n = 1
    And Bob has a session holding n = 1
    And Carol has a session holding n = 1
    And the events so far are ignored
    When the clock advances by 1 day
    And Dave sends a request that sets n to 1
    And Carol sends a request that increments n
    And Alice sends a request that increments n
    And Bob sends a request that increments n
    Then the bridge emitted, in any order:
      | event          | client | session          | is_new | is_init |
      | SessionSet     | Dave   | Dave             | true   | true    |
      | SessionDestroy | Alice  | Alice (previous) |        |         |
      | SessionDestroy | Bob    | Bob (previous)   |        |         |
      | SessionDestroy | Carol  | Carol (previous) |        |         |
      | SessionSet     | Carol  | Carol            | true   | true    |
      | SessionSet     | Alice  | Alice            | true   | true    |
      | SessionSet     | Bob    | Bob              | true   | true    |
