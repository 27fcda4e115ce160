//! The seeded generator of the recall-quality dataset: long multi-session conversations of one
//! person with the agent, one memory per message (turn-level, dated like a captured message),
//! and questions whose answering memories are marked.
//!
//! Each conversation has its own person: relatives, friends and pets with names, a job, a
//! town, hobbies, dated events, and preferences that change over time (the old statement stays
//! as a distractor). Most messages are everyday chatter that reuses the same names, places and
//! generic words ("called", "name", "morning"), so that a question shares words with many
//! memories that do not answer it. Questions are paraphrased: some share the answer's rare
//! words, some only its meaning.
//!
//! The same seed gives the same dataset on every machine (a xorshift generator, no crate).

use chrono::{Datelike, Duration, NaiveDate};

/// What a question needs to be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// One message states the answer.
    SingleFact,
    /// Two messages, linked by a person or thing, together answer it.
    MultiHop,
    /// A "when did…" or "which came first" question about dated events.
    Temporal,
    /// The answer is the latest of two messages; the earlier one is out of date.
    UpdatedPreference,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::SingleFact,
        Kind::MultiHop,
        Kind::Temporal,
        Kind::UpdatedPreference,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::SingleFact => "single fact",
            Kind::MultiHop => "multi-hop",
            Kind::Temporal => "temporal",
            Kind::UpdatedPreference => "updated preference",
        }
    }
}

pub struct Message {
    /// "[12 May 2024] text": the date the message was said, kept in the memory.
    pub content: String,
    /// Unix milliseconds (noon UTC of the session's day, plus the turn's minute).
    pub at: i64,
}

pub struct Question {
    pub text: String,
    pub kind: Kind,
    /// Indexes into the conversation's messages.
    pub evidence: Vec<usize>,
}

pub struct Conversation {
    pub messages: Vec<Message>,
    pub questions: Vec<Question>,
}

/// xorshift64*.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// `count` distinct items.
    fn distinct<'a>(&mut self, items: &[&'a str], count: usize) -> Vec<&'a str> {
        let mut pool: Vec<&str> = items.to_vec();
        let mut chosen = Vec::new();
        while chosen.len() < count && !pool.is_empty() {
            chosen.push(pool.swap_remove(self.below(pool.len())));
        }
        chosen
    }
}

const WOMEN: &[&str] = &[
    "Ana", "Maya", "Lena", "Sofia", "Priya", "Chloe", "Hana", "Ines", "Zoe", "Nora", "Leila",
    "Emma", "Yuki", "Clara", "Rosa", "Amara", "Freya", "Mei",
];
const MEN: &[&str] = &[
    "Tomás", "Daniel", "Omar", "Lucas", "Kenji", "Marco", "Felix", "Ravi", "Jonas", "Theo",
    "Samuel", "Arjun", "Diego", "Hugo", "Max", "Idris", "Bram", "Niko",
];
const SURNAMES: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Takahashi",
    "Brennan",
    "Haddad",
    "Kowalski",
    "Alvarez",
    "Novak",
    "Achebe",
];
const CITIES: &[&str] = &[
    "Valencia",
    "Porto",
    "Kyoto",
    "Montreal",
    "Edinburgh",
    "Tallinn",
    "Oaxaca",
    "Melbourne",
    "Bergen",
    "Ljubljana",
    "Seville",
    "Hanoi",
    "Cork",
    "Tbilisi",
    "Leipzig",
];
const PETS: &[&str] = &[
    "Miso",
    "Biscuit",
    "Pepper",
    "Nori",
    "Mochi",
    "Juniper",
    "Waffles",
    "Olive",
    "Ziggy",
    "Tofu",
    "Pickles",
    "Basil",
    "Clementine",
    "Otto",
];
/// (species, its young, pronoun)
const SPECIES: &[(&str, &str, &str)] = &[
    ("cat", "kitten", "she"),
    ("dog", "puppy", "he"),
    ("rabbit", "bunny", "she"),
    ("parrot", "parrot", "he"),
    ("tortoise", "tortoise", "she"),
];
const JOBS: &[&str] = &[
    "nurse",
    "architect",
    "data analyst",
    "primary school teacher",
    "carpenter",
    "pharmacist",
    "marine biologist",
    "graphic designer",
    "physiotherapist",
    "accountant",
    "sound engineer",
    "veterinarian",
];
const COMPANIES: &[&str] = &[
    "Northwind",
    "Helix Labs",
    "Bluefin Logistics",
    "Aurora Health",
    "Greenleaf Studio",
    "Tidewater Bank",
    "Quill & Co",
    "Brightpath",
];
const INSTRUMENTS: &[&str] = &[
    "cello",
    "ukulele",
    "piano",
    "saxophone",
    "violin",
    "drums",
    "banjo",
    "harp",
];
const SERVERS: &[&str] = &["hydra", "atlas", "borealis", "kestrel", "nimbus", "quartz"];
const CARS: &[&str] = &[
    "a used Toyota Yaris",
    "an electric Renault Zoe",
    "an old Volvo estate",
    "a Honda Civic",
    "a tiny Fiat Panda",
    "a VW camper van",
];
const ALLERGENS: &[&str] = &["peanuts", "shellfish", "penicillin", "sesame", "kiwi"];
const BOOKS: &[&str] = &[
    "The Overstory",
    "Piranesi",
    "Project Hail Mary",
    "Circe",
    "The Remains of the Day",
    "Klara and the Sun",
    "Station Eleven",
    "The Left Hand of Darkness",
];
const LANGUAGES: &[&str] = &[
    "Japanese",
    "Portuguese",
    "Korean",
    "Italian",
    "Dutch",
    "Swahili",
];
/// (what it was, a paraphrase used in questions)
const EVENTS: &[(&str, &str)] = &[
    ("ran my first half marathon", "half marathon"),
    (
        "gave a talk at the regional design conference",
        "conference talk",
    ),
    ("went to the Khruangbin concert", "concert"),
    ("passed my driving test", "driving test"),
    ("finished the pottery course", "pottery course"),
    ("had my wisdom teeth removed", "dental surgery"),
    ("went on the whale watching trip", "whale watching"),
    ("painted the whole living room green", "living room"),
    ("won the pub quiz with my team", "quiz"),
    ("climbed Ben Nevis", "mountain climb"),
    ("moved into the new flat", "move"),
    ("volunteered at the food bank fundraiser", "fundraiser"),
];
const FOODS: &[&str] = &[
    "ramen",
    "a mushroom risotto",
    "tacos",
    "pizza",
    "a lentil curry",
    "dumplings",
    "shakshuka",
    "pad thai",
];
const PLACES: &[&str] = &[
    "the park",
    "the market",
    "the library",
    "the gym",
    "the café on the corner",
    "the beach",
    "the office",
    "my parents' place",
];
const WEEKDAYS: &[&str] = &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];

/// The person a conversation is about.
struct Person {
    sister: &'static str,
    brother: &'static str,
    partner: &'static str,
    friends: Vec<&'static str>,
    coworker: &'static str,
    pet: &'static str,
    species: (&'static str, &'static str, &'static str),
    city: &'static str,
}

/// A message planted in a session with the questions it answers.
struct Planted {
    session: usize,
    text: String,
}

struct Builder {
    random: Random,
    sessions: usize,
    planted: Vec<Planted>,
    /// (text, kind, indexes into `planted`)
    questions: Vec<(String, Kind, Vec<usize>)>,
}

impl Builder {
    fn plant(&mut self, session: usize, text: String) -> usize {
        self.planted.push(Planted { session, text });
        self.planted.len() - 1
    }

    fn ask(&mut self, text: String, kind: Kind, evidence: Vec<usize>) {
        self.questions.push((text, kind, evidence));
    }

    fn session(&mut self) -> usize {
        self.random.below(self.sessions)
    }

    /// Two sessions, the first strictly earlier.
    fn ordered_sessions(&mut self) -> (usize, usize) {
        let first = self.random.below(self.sessions - 1);
        let second = first + 1 + self.random.below(self.sessions - first - 1);
        (first, second)
    }
}

/// Generates `count` conversations of `sessions` sessions of about `turns` messages each.
pub fn generate(seed: u64, count: usize, sessions: usize, turns: usize) -> Vec<Conversation> {
    (0..count)
        .map(|number| conversation(seed ^ ((number as u64 + 1) * 0x9E37_79B9), sessions, turns))
        .collect()
}

fn conversation(seed: u64, sessions: usize, turns: usize) -> Conversation {
    let mut random = Random::new(seed);
    let women = random.distinct(WOMEN, 5);
    let men = random.distinct(MEN, 4);
    let person = Person {
        sister: women[0],
        partner: women[1],
        friends: vec![women[2], men[0], women[3]],
        brother: men[1],
        coworker: men[2],
        pet: random.pick(PETS),
        species: SPECIES[random.below(SPECIES.len())],
        city: random.pick(CITIES),
    };
    let mut builder = Builder {
        random,
        sessions,
        planted: Vec::new(),
        questions: Vec::new(),
    };
    single_facts(&mut builder, &person);
    multi_hop(&mut builder, &person);
    let start = NaiveDate::from_ymd_opt(2024, 1, 8).unwrap_or_default()
        + Duration::days(builder.random.below(60) as i64);
    let mut days = Vec::with_capacity(sessions);
    let mut day = start;
    for _ in 0..sessions {
        days.push(day);
        day += Duration::days(4 + builder.random.below(9) as i64);
    }
    temporal(&mut builder, &days);
    updated_preferences(&mut builder, &person);

    // Lay out the sessions: chatter with the planted messages at random positions.
    let mut messages = Vec::new();
    let mut planted_at = vec![0usize; builder.planted.len()];
    for (session, day) in days.iter().enumerate() {
        let mut texts: Vec<(Option<usize>, String)> = Vec::new();
        let count = turns - turns / 5 + builder.random.below(turns / 5 * 2 + 1);
        for _ in 0..count {
            texts.push((None, chatter(&mut builder.random, &person)));
        }
        for (number, planted) in builder.planted.iter().enumerate() {
            if planted.session == session {
                let position = builder.random.below(texts.len() + 1);
                texts.insert(position, (Some(number), planted.text.clone()));
            }
        }
        let noon = day
            .and_hms_opt(12, 0, 0)
            .map(|time| time.and_utc().timestamp_millis())
            .unwrap_or_default();
        for (minute, (planted, text)) in texts.into_iter().enumerate() {
            if let Some(number) = planted {
                planted_at[number] = messages.len();
            }
            messages.push(Message {
                content: format!("[{}] {text}", day.format("%-d %B %Y")),
                at: noon + minute as i64 * 60_000,
            });
        }
    }
    let questions = builder
        .questions
        .into_iter()
        .map(|(text, kind, evidence)| Question {
            text,
            kind,
            evidence: evidence
                .into_iter()
                .map(|number| planted_at[number])
                .collect(),
        })
        .collect();
    Conversation {
        messages,
        questions,
    }
}

fn single_facts(builder: &mut Builder, person: &Person) {
    let (species, young, pronoun) = person.species;
    let pet = person.pet;
    let session = builder.session();
    let (subject, object) = if pronoun == "she" {
        ("She", "her")
    } else {
        ("He", "him")
    };
    let told = builder.plant(
        session,
        format!(
            "We finally adopted a {young}! {subject} is a {species} and we named {object} {pet}."
        ),
    );
    builder.ask(
        "What is my pet called?".to_string(),
        Kind::SingleFact,
        vec![told],
    );
    builder.ask(
        format!("What name did we give the {species}?"),
        Kind::SingleFact,
        vec![told],
    );

    let server = builder.random.pick(SERVERS);
    let session = builder.session();
    let told = builder.plant(
        session,
        format!("At work the new staging server is called {server}, after the old one died."),
    );
    builder.ask(
        "What is our staging server called?".to_string(),
        Kind::SingleFact,
        vec![told],
    );
    builder.ask(
        "Which machine do we use for staging at work?".to_string(),
        Kind::SingleFact,
        vec![told],
    );

    let job = builder.random.pick(JOBS);
    let company = builder.random.pick(COMPANIES);
    let session = builder.session();
    let told = builder.plant(
        session,
        format!(
            "Big news: I accepted the offer and start as {} at {company} next month.",
            with_article(job)
        ),
    );
    builder.ask(
        "What is my new job?".to_string(),
        Kind::SingleFact,
        vec![told],
    );
    builder.ask(
        "Which company hired me?".to_string(),
        Kind::SingleFact,
        vec![told],
    );

    let sister_job = builder.random.pick(JOBS);
    let session = builder.session();
    let told = builder.plant(
        session,
        format!(
            "My sister {} just qualified as {}, we are all so proud of her.",
            person.sister,
            with_article(sister_job)
        ),
    );
    builder.ask(
        format!("What does {} do for a living?", person.sister),
        Kind::SingleFact,
        vec![told],
    );

    let allergen = builder.random.pick(ALLERGENS);
    let session = builder.session();
    let told = builder.plant(
        session,
        format!(
            "Remember that I'm allergic to {allergen}, I ended up in hospital once because of it."
        ),
    );
    builder.ask(
        "Is there anything I can't eat or take for medical reasons?".to_string(),
        Kind::SingleFact,
        vec![told],
    );

    let car = builder.random.pick(CARS);
    let session = builder.session();
    let told = builder.plant(
        session,
        format!("I bought {car} from a neighbour, it's not pretty but it runs."),
    );
    builder.ask(
        "What car did I get?".to_string(),
        Kind::SingleFact,
        vec![told],
    );

    let instrument = builder.random.pick(INSTRUMENTS);
    let weekday = builder.random.pick(WEEKDAYS);
    let session = builder.session();
    let told = builder.plant(
        session,
        format!("I signed up for {instrument} lessons, every {weekday} evening with a retired orchestra player."),
    );
    builder.ask(
        "Which instrument am I learning to play?".to_string(),
        Kind::SingleFact,
        vec![told],
    );
    builder.ask(
        "On which evening do I have my music lesson?".to_string(),
        Kind::SingleFact,
        vec![told],
    );

    let language = builder.random.pick(LANGUAGES);
    let session = builder.session();
    let told = builder.plant(
        session,
        format!("I've been doing {language} on Duolingo for forty days in a row now."),
    );
    builder.ask(
        "What language am I studying?".to_string(),
        Kind::SingleFact,
        vec![told],
    );

    let session = builder.session();
    let told = builder.plant(
        session,
        format!(
            "My partner {} is the one who cooks, I'm banned from the kitchen.",
            person.partner
        ),
    );
    builder.ask(
        "Who does the cooking at home?".to_string(),
        Kind::SingleFact,
        vec![told],
    );

    let month = builder
        .random
        .pick(&["March", "June", "September", "November"]);
    let day = 1 + builder.random.below(28);
    let session = builder.session();
    let told = builder.plant(
        session,
        format!("My birthday is on {day} {month}, I'd like a quiet dinner this year."),
    );
    builder.ask(
        "When is my birthday?".to_string(),
        Kind::SingleFact,
        vec![told],
    );

    let session = builder.session();
    let told = builder.plant(
        session,
        format!(
            "We live in {} now, two streets from the river.",
            person.city
        ),
    );
    builder.ask(
        "Which city do I live in?".to_string(),
        Kind::SingleFact,
        vec![told],
    );

    // The same kinds of fact about each of the people: only the name tells them apart.
    let people = [
        person.brother,
        person.partner,
        person.coworker,
        person.friends[1],
        person.friends[2],
    ];
    let jobs = builder.random.distinct(JOBS, people.len());
    let trips = builder.random.distinct(CITIES, people.len());
    for ((name, job), trip) in people.iter().zip(jobs).zip(trips) {
        let session = builder.session();
        let phrasing = builder.random.below(3);
        let told = builder.plant(
            session,
            match phrasing {
                0 => format!(
                    "{name} has been working as {} for years now.",
                    with_article(job)
                ),
                1 => format!(
                    "Fun fact: {name} is {}, and has the funniest stories about it.",
                    with_article(job)
                ),
                _ => format!(
                    "{name} got promoted, still {} but with a team now.",
                    with_article(job)
                ),
            },
        );
        let question = if builder.random.below(2) == 0 {
            format!("What is {name}'s job?")
        } else {
            format!("What does {name} do for work?")
        };
        builder.ask(question, Kind::SingleFact, vec![told]);
        let session = builder.session();
        let told = builder.plant(
            session,
            format!("{name} just got back from a week in {trip} and brought me a fridge magnet."),
        );
        builder.ask(
            format!("Where did {name} travel recently?"),
            Kind::SingleFact,
            vec![told],
        );
        if *name == person.brother {
            builder.ask(
                format!("What did {name} bring me back from {trip}?"),
                Kind::SingleFact,
                vec![told],
            );
        }
    }
}

/// "an architect", "a nurse".
fn with_article(noun: &str) -> String {
    let vowel = noun
        .chars()
        .next()
        .is_some_and(|first| "aeiouAEIOU".contains(first));
    format!("{} {noun}", if vowel { "an" } else { "a" })
}

fn multi_hop(builder: &mut Builder, person: &Person) {
    let (species, _, _) = person.species;
    let instrument = builder.random.pick(INSTRUMENTS);
    let city = builder.random.pick(CITIES);
    let (first, second) = builder.ordered_sessions();
    let gift = builder.plant(
        first,
        format!(
            "My brother {} gave me his old {instrument} when he cleared out his flat.",
            person.brother
        ),
    );
    let moved = builder.plant(
        second,
        format!(
            "{} has moved to {city} for good, he loves it there.",
            person.brother
        ),
    );
    builder.ask(
        format!("Who gave me the {instrument}?"),
        Kind::SingleFact,
        vec![gift],
    );
    builder.ask(
        format!("In which city does the person who gave me the {instrument} live now?"),
        Kind::MultiHop,
        vec![gift, moved],
    );

    let book = builder.random.pick(BOOKS);
    let friend = person.friends[0];
    let job = builder.random.pick(JOBS);
    let (first, second) = builder.ordered_sessions();
    let recommended = builder.plant(
        first,
        format!("{friend} recommended {book} to me, I'm halfway through it."),
    );
    let works = builder.plant(
        second,
        format!(
            "{friend} works as {}, long shifts lately.",
            with_article(job)
        ),
    );
    builder.ask(
        format!("Who recommended {book} to me?"),
        Kind::SingleFact,
        vec![recommended],
    );
    builder.ask(
        format!("What does the friend who recommended {book} do for work?"),
        Kind::MultiHop,
        vec![recommended, works],
    );

    let vet = builder.random.pick(SURNAMES);
    let (first, second) = builder.ordered_sessions();
    let pet_told = builder.plant(
        first,
        format!(
            "{} loves sleeping in the laundry basket, typical {species}.",
            person.pet
        ),
    );
    let vet_told = builder.plant(
        second,
        format!(
            "Took {} for a check-up with Dr {vet}, all good.",
            person.pet
        ),
    );
    builder.ask(
        format!("What is the name of the vet who treats my {species}?"),
        Kind::MultiHop,
        vec![pet_told, vet_told],
    );

    let coworker = person.coworker;
    let hobby_city = builder.random.pick(CITIES);
    let (first, second) = builder.ordered_sessions();
    let team = builder.plant(
        first,
        format!("{coworker} from my team is the one who organised the climbing trip."),
    );
    let origin = builder.plant(
        second,
        format!("{coworker} grew up in {hobby_city}, he told me over lunch."),
    );
    builder.ask(
        format!("Where did {coworker} grow up?"),
        Kind::SingleFact,
        vec![origin],
    );
    builder.ask(
        "Where did the colleague who organised the climbing trip grow up?".to_string(),
        Kind::MultiHop,
        vec![team, origin],
    );

    let friend = person.friends[1];
    let food = builder.random.pick(FOODS);
    let (first, second) = builder.ordered_sessions();
    let wedding = builder.plant(
        first,
        format!("{friend} asked me to be the best man at his wedding!"),
    );
    let dish = builder.plant(
        second,
        format!("{friend} makes the best {food}, he won't share the recipe."),
    );
    builder.ask(
        "What dish is the friend whose wedding I'm best man at known for?".to_string(),
        Kind::MultiHop,
        vec![wedding, dish],
    );
}

fn temporal(builder: &mut Builder, days: &[NaiveDate]) {
    let chosen: Vec<usize> = {
        let mut pool: Vec<usize> = (0..EVENTS.len()).collect();
        let mut chosen = Vec::new();
        for _ in 0..6 {
            chosen.push(pool.swap_remove(builder.random.below(pool.len())));
        }
        chosen
    };
    let mut dated: Vec<(usize, usize, usize)> = Vec::new();
    for event in chosen {
        let (what, _) = EVENTS[event];
        let session = 1 + builder.random.below(builder.sessions - 1);
        // A mention before it happened, which is not the answer.
        let before = builder.random.below(session);
        builder.plant(
            before,
            format!("Nervous: I'm about to {}, soon.", future(what)),
        );
        let told = builder.plant(session, format!("Today I {what}, what a day."));
        dated.push((event, session, told));
        builder.ask(
            format!("When did I {}?", infinitive(what)),
            Kind::Temporal,
            vec![told],
        );
    }
    for pair in dated.chunks(2) {
        let [
            (first, first_session, first_told),
            (second, second_session, second_told),
        ] = pair
        else {
            continue;
        };
        if first_session == second_session {
            continue;
        }
        builder.ask(
            format!(
                "Which happened first: my {} or my {}?",
                EVENTS[*first].1, EVENTS[*second].1
            ),
            Kind::Temporal,
            vec![*first_told, *second_told],
        );
    }
    // A question naming the date.
    if let Some((_, session, told)) = dated.first() {
        let day = days[*session];
        builder.ask(
            format!(
                "What did I do on {} {} {}?",
                day.day(),
                day.format("%B"),
                day.year()
            ),
            Kind::Temporal,
            vec![*told],
        );
    }
}

/// "ran my first half marathon" -> "run my first half marathon" (for "When did I …?").
fn infinitive(past: &str) -> String {
    let (verb, rest) = past.split_once(' ').unwrap_or((past, ""));
    let verb = match verb {
        "ran" => "run",
        "gave" => "give",
        "went" => "go",
        "passed" => "pass",
        "finished" => "finish",
        "had" => "have",
        "painted" => "paint",
        "won" => "win",
        "climbed" => "climb",
        "moved" => "move",
        "volunteered" => "volunteer",
        other => other,
    };
    format!("{verb} {rest}")
}

fn future(past: &str) -> String {
    infinitive(past)
}

fn updated_preferences(builder: &mut Builder, person: &Person) {
    let changes: [(&str, &str, &str); 6] = [
        (
            "I start every morning with a double espresso, black.",
            "I've given up coffee, it's green tea every morning now.",
            "What do I drink in the morning these days?",
        ),
        (
            "I'm strictly vegetarian, no meat or fish for me.",
            "I started eating fish again, the doctor said I need more protein.",
            "Do I currently eat fish?",
        ),
        (
            "I write all my code in Vim, never touching anything else.",
            "I switched my editor to Helix last week and I'm not going back to Vim.",
            "Which text editor do I use now?",
        ),
        (
            "I go to the gym on Monday and Wednesday mornings.",
            "My gym days changed, now it's Tuesday and Thursday after work.",
            "When do I go to the gym now?",
        ),
        (
            "My favourite band at the moment is Fleetwood Mac, on repeat all day.",
            "Lately I can't stop listening to Bon Iver, forget Fleetwood Mac.",
            "What music am I into lately?",
        ),
        (
            "I commute to work by bus, forty minutes each way.",
            "I bike to work now instead of taking the bus, much better.",
            "How do I get to work now?",
        ),
    ];
    let mut pool: Vec<usize> = (0..changes.len()).collect();
    for _ in 0..5 {
        let (old, new, question) = changes[pool.swap_remove(builder.random.below(pool.len()))];
        let (first, second) = builder.ordered_sessions();
        builder.plant(first, old.to_string());
        let current = builder.plant(second, new.to_string());
        builder.ask(question.to_string(), Kind::UpdatedPreference, vec![current]);
    }
    let friend = person.friends[2];
    let (first, second) = builder.ordered_sessions();
    let away = builder.random.pick(CITIES);
    builder.plant(
        first,
        format!("{friend} lives in {away}, so we only see each other twice a year."),
    );
    let city = person.city;
    let current = builder.plant(
        second,
        format!("{friend} moved to {city} and now lives around the corner from us!"),
    );
    builder.ask(
        format!("Where does {friend} live now?"),
        Kind::UpdatedPreference,
        vec![current],
    );
}

/// One everyday message that answers no question but shares names and words with many.
fn chatter(random: &mut Random, person: &Person) -> String {
    let friend = random.pick(&person.friends);
    let place = random.pick(PLACES);
    let food = random.pick(FOODS);
    let weekday = random.pick(WEEKDAYS);
    let city = random.pick(CITIES);
    let stranger = random.pick(WOMEN);
    let pet = random.pick(PETS);
    let minutes = 10 + random.below(50);
    match random.below(40) {
        0 => format!(
            "{} knocked a glass off the table again this morning.",
            person.pet
        ),
        1 => format!("Had {food} for dinner, not bad at all."),
        2 => format!("{friend} and I grabbed lunch near {place}."),
        3 => format!(
            "My sister {} called me, we talked for an hour.",
            person.sister
        ),
        4 => "The weather has been awful all week, constant rain.".to_string(),
        5 => format!(
            "I watched a documentary about {} last night.",
            random.pick(&[
                "octopuses",
                "volcanoes",
                "the Roman empire",
                "deep sea fish",
                "bees"
            ])
        ),
        6 => format!("{}'s neighbour has a dog called {pet}, so cute.", friend),
        7 => format!(
            "I'm so tired today, slept only {} hours.",
            4 + random.below(3)
        ),
        8 => format!("Spent the afternoon at {place} reading."),
        9 => format!(
            "{} said the {} needs a new battery.",
            person.partner,
            random.pick(&["smoke alarm", "doorbell", "car key", "kitchen scale"])
        ),
        10 => format!("The meeting on {weekday} ran {minutes} minutes over, again."),
        11 => format!("Thinking about a weekend trip to {city} sometime."),
        12 => format!(
            "{stranger} from the book club is called the organiser, but nobody listens to her."
        ),
        13 => "What should I name my new plant? It's a little fern.".to_string(),
        14 => format!(
            "Walked {} to {place}, {} was happy.",
            person.pet,
            if person.species.2 == "she" {
                "she"
            } else {
                "he"
            }
        ),
        15 => format!(
            "My brother {} sent me a meme about {}.",
            person.brother,
            random.pick(&["cats", "Mondays", "coffee", "printers"])
        ),
        16 => "Got a parking ticket, lovely start to the morning.".to_string(),
        17 => {
            "The server at work crashed during the demo, the client was not impressed.".to_string()
        }
        18 => format!("Trying a new recipe for {food} tonight."),
        19 => format!("{} is working late on {weekday} again.", person.partner),
        20 => "Do you know any good podcasts for a long drive?".to_string(),
        21 => format!(
            "{friend} is thinking of getting a {}.",
            random.pick(&["cat", "dog", "rabbit", "parrot"])
        ),
        22 => "I need to call the landlord about the boiler.".to_string(),
        23 => format!(
            "My coworker {} keeps calling meetings that could be emails.",
            person.coworker
        ),
        24 => format!("It's been a quiet {weekday}, nothing much happened."),
        25 => "Ordered new running shoes, hope they fit.".to_string(),
        26 => format!(
            "{} gave me a lift to {place} this morning.",
            random.pick(&person.friends)
        ),
        27 => "Cleaned the whole flat, it took forever.".to_string(),
        28 => format!(
            "The new café in town is called {}, the coffee is decent.",
            random.pick(&["Bean There", "Grind", "Second Cup", "The Daily"])
        ),
        29 => format!("Had a long video call with my parents about their trip to {city}."),
        30 => format!("{} was sick all night, we might go to the vet.", pet),
        31 => "My back hurts from sitting all day, I need a better chair.".to_string(),
        32 => format!("Booked a table for {food} on {weekday}."),
        33 => format!("{friend} lent me a book but I forgot its name."),
        34 => format!("Played board games with {friend} until midnight."),
        35 => format!("The train to {city} was delayed by {minutes} minutes."),
        36 => "I keep forgetting to water the plants.".to_string(),
        37 => format!(
            "{} wants to repaint the kitchen, I'm not sure.",
            person.partner
        ),
        38 => format!(
            "Saw a funny {} at {place} today.",
            random.pick(&["dog", "street performer", "sign", "hat"])
        ),
        _ => format!(
            "{} and I watched a film on {weekday}, it was fine.",
            person.partner
        ),
    }
}
