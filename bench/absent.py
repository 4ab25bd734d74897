"""Questions about topics no generated meeting mentions: a good answerer refuses every one.

`ABSENT` (5) and `ABSENT_MORE` (25, everyday wording that shares a word with meeting talk now and then) serve the dev
splits; held-out splits written later carry their own, never used for calibration. `absent_questions(split)` picks.
"""
from __future__ import annotations

ABSENT = ["What did they say about the weather in Antarctica?", "What is the budget for the Zebra project?",
          "Who won the football match last night?", "What is the price per seat for the Unicorn project?",
          "Which restaurant did they book for the dinner?"]
# more topics no meeting of the generator mentions, in everyday wording that shares a word with meeting talk now
# and then ("team", "new", "March", "party", "conference"): the answer gate was calibrated on these on dev only
ABSENT_MORE = [
    "What time does the office party start?", "How many vacation days do employees get?",
    "Which airline will they fly with?", "What was the score of the basketball game?", "How tall is the Eiffel Tower?",
    "What color will the new logo be?", "How much does the coffee machine cost?", "When is the fire drill?",
    "What is the parking policy?", "Who is the keynote speaker at the conference?",
    "What programming language will the app use?", "How many pets does the presenter have?",
    "Where is the company picnic this year?", "What is the interest rate on the loan?",
    "Which hotel will the visitors stay at?", "How long is the lunch break?", "Who won the election?",
    "What is the name of the manager's dog?", "Which movie did the team watch on Friday?",
    "How much rain fell in March?", "Who is responsible for cleaning the kitchen?",
    "What was the team's favourite song?", "How many goals did the striker score?",
    "Which band is playing at the party?", "What is the dress code for the gala?"]

# held-out 3's own absent topics (written with that split, never used for calibration)
ABSENT_HELDOUT3 = (
    ["Which song opened the concert?", "How deep is the swimming pool?", "Who painted the portrait in the lobby?",
     "What is the recipe for the soup?", "How many floors does the new library have?"],
    ["What breed is the receptionist's cat?", "When does the ski season open?", "Which chess opening did he play?",
     "How much sugar goes into the cake?", "What is the capital of Australia?", "Who directed the documentary?",
     "How many calories are in a banana?", "Which team won the cricket final?", "What time does the bakery close?",
     "How old is the oak tree in the garden?", "What is the tallest mountain in Africa?",
     "Which language is spoken in Brazil?", "How fast can a cheetah run?", "Who wrote the poem about the sea?",
     "What flowers grow on the balcony?", "When is the next full moon?", "Which actor plays the detective?",
     "How many strings does a violin have?", "What is the fare for the ferry?", "Who knitted the blue scarf?",
     "Which board game did the kids like?", "How long does the marathon take?", "What is served at the wedding?",
     "Where did the astronaut land?", "Which museum has the dinosaur skeleton?"])


# held-out 4's own absent topics (written with that split, never used for calibration)
ABSENT_HELDOUT4 = (
    ["Which bird nests under the bridge?", "How many goals were scored in the derby?",
     "What is the wifi password at the cafe?", "Who sang the anthem at the opening?",
     "How heavy is the anchor of the ship?"],
    ["Which spice makes the curry hot?", "When does the night train leave?", "How many moons does Jupiter have?",
     "Who designed the cathedral?", "What is the speed limit on the motorway?", "Which novel won the prize?",
     "How much does a pint of milk cost?", "What did the child draw on the wall?", "Who fixed the broken bicycle?",
     "Which island has the volcano?", "How cold is the lake in winter?", "What is the plot of the opera?",
     "Which dance did the couple learn?", "How long do tortoises live?", "Who invented the telescope?",
     "What colour is the neighbour's car?", "Which grape makes the red wine?", "How many seats does the stadium have?",
     "Where was the treasure buried?", "What is the name of the lighthouse keeper?", "Which planet has rings?",
     "How tall is the giraffe at the zoo?", "What did the chef cook for dessert?", "Who trained the puppy?",
     "Which river floods every spring?"])


# held-out 5's own absent topics (written with that split, never used for calibration)
ABSENT_HELDOUT5 = (
    ["Which flavour of ice cream sold out?", "How many windows does the old mill have?",
     "Who refereed the rugby game?", "What is the tide time at the harbour?", "Which poet read at the festival?"],
    ["How many legs does a spider have?", "What is the boiling point of water on a mountain?",
     "Who won the baking contest?", "Which tram goes to the zoo?", "How long is the Nile?",
     "What did the parrot say?", "Which queen built the palace?", "How much is a ticket to the aquarium?",
     "Who is the goalkeeper's coach?", "What is the best way to grow tomatoes?", "Which cheese is the smelliest?",
     "How far is the moon?", "Who found the lost kitten?", "What is the oldest tree in the park?",
     "Which comedian hosted the show?", "How many pages does the cookbook have?", "What time does the circus start?",
     "Who carved the wooden statue?", "Which mushrooms are poisonous?", "How warm is the sea in August?",
     "What is the motto of the school?", "Which knight guarded the castle?", "How big is a blue whale?",
     "Who repaired the church organ?", "What games are played at the fair?"])


# held-out 6's own absent topics (written with that split, never used for calibration)
ABSENT_HELDOUT6 = (
    ["Which band played at the wedding?", "How deep is the village pond?", "Who painted the lighthouse mural?",
     "What is the opening time of the public library?", "Which dog breed won the show?"],
    ["How many strings does a cello have?", "What is the capital of Mongolia?", "Who invented the typewriter?",
     "Which bakery sells the best rye bread?", "How tall is the cathedral spire?", "What did the fortune teller predict?",
     "Which ferry crosses to the island?", "How much does a season pass for skiing cost?",
     "Who sang the national anthem at the match?", "What is the recipe for pancakes?", "Which planet has rings?",
     "How old is the oak by the river?", "Who designed the town hall?", "What colour are flamingos?",
     "Which magician performed at the party?", "How many steps lead up to the tower?",
     "What time does the fish market close?", "Who translated the novel?", "Which herbs grow on the balcony?",
     "How cold does the desert get at night?", "What is written on the old gravestone?",
     "Which pirate buried the treasure?", "How long do tortoises live?", "Who tuned the piano?",
     "What sports are played on the beach?"])


# held-out 7's own absent topics (written with that split, never used for calibration)
ABSENT_HELDOUT7 = (
    ["Which choir sang at the carol service?", "How long is the ferry ride to the lighthouse?",
     "Who knitted the red scarf?", "What flavour was the birthday cake?", "Which horse won the derby?"],
    ["How many keys does a piano have?", "What is the capital of Peru?", "Who discovered penicillin?",
     "Which florist delivered the roses?", "How high is the ski jump?", "What did the weather forecast say?",
     "Which train stops at the airport?", "How much does a museum membership cost?",
     "Who refereed the tennis final?", "What is the recipe for lemonade?", "Which moon orbits Jupiter?",
     "How old is the stone bridge?", "Who built the old windmill?", "What colour are penguin chicks?",
     "Which clown visited the hospital?", "How many seats are in the opera house?",
     "What time does the flea market open?", "Who illustrated the comic book?", "Which vegetables grow in winter?",
     "How hot is the surface of Venus?", "What is engraved on the trophy?",
     "Which explorer reached the pole first?", "How long do parrots live?", "Who repainted the fence?",
     "What games do children play at recess?"])


# held-out 8's own absent topics (written with that split, never used for calibration)
ABSENT_HELDOUT8 = (
    ["Which band played at the wedding?", "How deep is the swimming pool?", "Who painted the mural downstairs?",
     "What breed is the neighbour's dog?", "Which team won the rowing race?"],
    ["How many moons does Mars have?", "What is the capital of Kenya?", "Who invented the telephone?",
     "Which bakery made the bread rolls?", "How tall is the clock tower?", "What did the fortune teller predict?",
     "Which bus goes to the zoo?", "How much does a gym pass cost?", "Who sang the national anthem?",
     "What is the recipe for pancakes?", "Which planet has the most rings?", "How old is the oak tree?",
     "Who designed the fountain?", "What colour is a flamingo?", "Which magician performed at the fair?",
     "How many lanes does the bowling alley have?", "What time does the library close?",
     "Who wrote the detective novel?", "Which fruits grow in the orchard?", "How cold is the South Pole?",
     "What is printed on the souvenir mug?", "Which pilot flew the first glider?", "How long do tortoises live?",
     "Who mowed the lawn?", "What songs do sailors sing?"])


# held-out 9's own absent topics (written with that split, never used for calibration)
ABSENT_HELDOUT9 = (
    ["Which orchestra played the overture?", "How many steps lead to the cathedral?", "Who carved the wooden bear?",
     "What flavour was the wedding cake?", "Which yacht won the regatta?"],
    ["How far away is the Moon?", "What is the capital of Laos?", "Who discovered the planet Neptune?",
     "Which gardener pruned the roses?", "How heavy is an elephant?", "What did the tide table show?",
     "Which ferry crosses the channel?", "How much does a haircut cost?", "Who scored the winning goal?",
     "What is the recipe for lasagne?", "Which comet passes every 76 years?", "How old is the castle?",
     "Who knitted the scarf?", "What colour is a canary?", "Which clown juggled at the circus?",
     "How many keys does an accordion have?", "What time does the pharmacy open?",
     "Who illustrated the picture book?", "Which vegetables grow in the allotment?", "How hot is the Sahara?",
     "What is engraved on the pocket watch?", "Which astronaut walked on the Moon first?", "How long do lobsters live?",
     "Who trimmed the hedge?", "What songs do miners sing?"])


# held-out 10's own absent topics (written with that split, never used for calibration)
ABSENT_HELDOUT10 = (
    ["Which lullaby did the grandmother hum?", "Which surfer caught the biggest wave?",
     "How many pearls are on the necklace?", "Who baked the sourdough?", "Who refurbished the carousel?"],
    ["How wide is the Amazon river?", "What currency does Iceland use?", "Who designed the postage stamp?",
     "Which beekeeper sold the honey?", "How many feathers does a peacock have?", "What did the fortune cookie say?",
     "Who climbed the volcano?", "Which island has the tallest waterfall?", "What colour is the submarine?",
     "Which poet wrote about daffodils?", "How heavy is a bowling ball?", "Which dinosaur had three horns?",
     "How long is the Great Wall?", "What did the graffiti on the bridge say?", "Which saint is the patron of sailors?",
     "How many tiles cover the bathroom floor?", "Which cheese goes into fondue?", "How salty is the Dead Sea?",
     "Who feeds the pigeons in the square?", "Which goalkeeper saved the penalty?",
     "Which comedian hosted the quiz night?", "What is the plot of the opera?", "Who rescued the stranded whale?",
     "Which vineyard makes the rosé?", "How many candles were on the cake?"])


# held-out 11's own absent topics (written with that split, never used for calibration)
ABSENT_HELDOUT11 = (
    ["Which violinist won the competition?", "Who sculpted the marble lion?",
     "What toppings were on the pizza?", "Which kite flew highest at the festival?",
     "How many arches does the aqueduct have?"],
    ["How deep is the Mariana Trench?", "What is the national dish of Peru?",
     "Who drove the first steam locomotive?", "Which tailor altered the wedding dress?",
     "How long can a camel go without water?", "Which constellation looks like a hunter?",
     "Who rowed across the Atlantic?", "Which glacier is the largest in the Alps?", "What colour is the ambulance?",
     "Which novelist lived on the houseboat?", "How heavy is a grand piano?", "Which bird cannot fly?",
     "How high is Mount Kilimanjaro?", "What did the sign at the zoo say?", "Which pope lived in Avignon?",
     "How many bricks are in the chimney?", "Which herb goes into pesto?", "How many rings does Saturn have?",
     "Who polished the brass doorknob?", "Which referee showed the red card?",
     "Which acrobat fell off the trapeze?", "What is the storyline of the ballet?",
     "Who built the treehouse?", "Which brewery makes the stout?", "How many balloons were released?"])


ABSENT_HELDOUT12 = (
    ["Which harpist played at the gala?", "Who carved the wooden totem pole?", "Which florist arranged the bouquets?",
     "Which canoeist capsized in the rapids?", "How many windmills stand on the ridge?"],
    ["How long is the Great Wall of China?", "What is the official language of Brazil?", "Who first split the atom?",
     "Which jockey rode the winning horse?", "How long does a parrot live?", "Which planet has the longest day?",
     "Who climbed Everest without oxygen?", "Which volcano erupted in Iceland?", "What colour is the fire engine?",
     "Which playwright wrote about a shipwreck?", "How heavy is a blue whale?", "Which snake is the most venomous?",
     "How deep is Lake Baikal?", "What was written on the chalkboard outside the cafe?",
     "Which emperor built the palace?", "How many steps lead up to the bell tower?",
     "Which spice makes curry yellow?", "How many legs does a lobster have?", "Who tuned the church organ?",
     "Which cyclist won the mountain stage?", "Which magician sawed the assistant in half?",
     "What happens at the end of the musical?", "Who embroidered the tablecloth?",
     "Which vineyard produces the rose?", "How many fireworks were launched?"])


ABSENT_HELDOUT13 = (
    ["Which cellist opened the festival?", "Who designed the city's coat of arms?", "Which potter made the blue vase?",
     "Which diver reached the deepest wreck?", "How many lanterns hung over the square?"],
    ["How long is the river Danube?", "What is the capital of Kazakhstan?", "Who invented the lawnmower?",
     "Which batsman scored the century?", "How long does a tortoise live?", "Which asteroid is the largest?",
     "Who swam the English Channel first?", "Which geyser erupts most often?", "What colour is the school bus?",
     "Which novelist set a story on the moon?", "How heavy is an elephant's brain?", "Which spider spins the largest web?",
     "How wide is the Panama Canal?", "What was engraved on the silver locket?",
     "Which sultan commissioned the mosque?", "How many pillars hold up the temple roof?",
     "Which fruit is used in marmalade?", "How many arms does an octopus have?", "Who restored the stained glass window?",
     "Which sprinter broke the world record?", "Which juggler dropped the flaming torches?",
     "How does the opera end?", "Who sewed the patchwork quilt?", "Which distillery ages the whisky?",
     "How many kites were flown on the beach?"])


ABSENT_HELDOUT14 = (
    ["Which tenor sang at the charity dinner?", "Who glazed the ceramic tiles in the lobby?",
     "Which falconer trained the hawk?",
     "Which climber reached the summit first this year?", "How many tents were pitched at the campsite?"],
    ["How tall is the Matterhorn?", "What is the capital of Uruguay?", "Who invented the safety pin?",
     "Which jockey won the steeplechase?", "How many quills does a hedgehog carry?",
     "Which satellite photographed the storm?",
     "Who first crossed the Sahara by car?", "Which glacier is retreating fastest?", "What colour is a flamingo's egg?",
     "Which cartoonist drew the mayor?", "How many teeth does a shark grow?", "Which ant builds the tallest mound?",
     "How cold does the Antarctic plateau get?", "What was scribbled on the napkin?",
     "Which pharaoh ordered the obelisk?", "How many rivets hold the hull together?",
     "Which spice turns rice yellow?", "How many hearts does a squid have?", "Who restored the grandfather clock?",
     "Which rower stroked the winning crew?", "Which ventriloquist toured the seaside towns?",
     "How does the ballet finish?", "Who stitched the leather saddle?", "Which winery makes the sparkling cider?",
     "How many sandcastles were built at the contest?"])


ABSENT_HELDOUT15 = (
    ["Which trumpeter led the marching band?", "Which ice sculptor carved the swan?",
     "Which shepherd won the sheepdog trials?", "Which skater landed the triple jump?",
     "How many scarecrows stood in the field?"],
    ["Which composer wrote the Moonlight Sonata?", "Which bone in the human skeleton is the longest?",
     "Which element has the chemical symbol Au?", "In what year did the Titanic sink?",
     "How many players are on a water polo team?", "Who painted the ceiling of the Sistine Chapel?",
     "Who first measured the speed of light?", "Where were the first modern Olympics held?",
     "Which monk is said to have invented champagne?", "What does a koala eat?",
     "Why do snails leave a trail of slime?",
     "What is the main ingredient of guacamole?", "Which country grows the most coffee?",
     "Who was the first woman to win a Nobel prize?", "What do ladybirds feed on?",
     "Which author created Sherlock Holmes?", "How many islands make up Japan?",
     "Which archer split the arrow at the tournament?", "Which gymnast first earned a perfect ten?",
     "Which puppeteer ran the Punch and Judy show?", "How many spokes are on a bicycle wheel?",
     "Which cobbler resoled the hiking boots?", "Where do sea turtles lay their eggs?",
     "Which tightrope walker crossed Niagara Falls?", "When was the Great Pyramid built?"])


ABSENT_HELDOUT16 = (
    ["Which keeper tossed fish to the sea lions?", "Which locksmith opened the old safe?",
     "Which nurse cared for the newborn triplets?", "Which chimney sweep cleaned the flue?",
     "How many oarsmen rowed the longboat?"],
    ["Who composed the Four Seasons?", "At what temperature does mercury freeze?",
     "Which gas do plants absorb from the air?", "Who wrote Don Quixote?",
     "Into how many chambers is the human heart divided?", "Which desert spans the widest territory?",
     "Which instrument did Louis Armstrong play?", "Which metal turns liquid at body heat?",
     "Where was the tango first danced?", "Which ocean reaches the greatest depth?",
     "What is a polygon with six sides called?", "Which vitamin does sunlight give us?",
     "Which tongue do most people speak natively?", "Which river flows through Baghdad?",
     "Who was the first cosmonaut?", "What is the chemical formula for table salt?",
     "Which desert animal stores fat in its hump?", "Which general crossed the Alps with elephants?",
     "What is the hardest natural substance?", "How many time zones does Russia span?",
     "What is the tiniest independent state?", "Which fish swims upstream to spawn?",
     "What causes the northern lights?", "Which philosopher taught Alexander the Great?",
     "What shape is a honeycomb cell?"])


ABSENT_HELDOUT17 = (
    ["Which glassblower shaped the green bottle?", "Which ferryman carried the pilgrims across the river?",
     "Which hairdresser braided the bride's hair?", "Which mechanic restored the vintage tractor?",
     "How many lifeboats hung from the steamer?"],
    ["Which Renaissance master created the Mona Lisa?", "Which organ wraps the entire body?",
     "Which planet sits nearest to the Sun?", "How many bones make up an adult hand?", "Who wrote Hamlet?",
     "What do caterpillars become?", "Which bird has the heaviest egg?", "A pentagon has how many corners?",
     "Which two metals make bronze?", "Which navigator landed in the Bahamas in 1492?",
     "Which continent contains the most nations?", "How many minutes does sunlight travel before arriving here?",
     "Which fruit becomes a prune after drying?", "Which mammal can truly fly?",
     "Who developed the theory of relativity?",
     "Which war ended in 1945?", "Which city is known as the Big Apple?", "What is the square root of eighty-one?",
     "Which ancient wonder stood at Alexandria?", "How many hours pass while the Earth completes a full spin?",
     "Which animal is the noisiest of all?", "Which Dutch painter lost part of his ear?",
     "Which country gave the world sushi?", "Which chess piece moves in an L shape?",
     "Which naturalist sailed on the Beagle?"])


ABSENT_HELDOUT18 = (
    ["Who forged the wrought iron gates at the manor?", "Which weaver wove the tartan rug?",
     "Which thatcher repaired the cottage roof?", "Which milkmaid churned the butter?",
     "How many geese waddle around the farmyard?"],
    ["Which Norwegian artist created The Scream?", "What is the most plentiful gas in Earth's atmosphere?",
     "Who wrote Pride and Prejudice?", "Which planet is called the Red Planet?",
     "Who was the first president of the United States?", "Which ocean separates Africa from Australia?",
     "Which buzzing insect gives us honey?", "Which city serves as Canada's seat of government?",
     "Which scientist described gravity after seeing an apple fall?", "How many continents are there?",
     "Which artist sculpted David?", "Which gemstone is the birthstone for April?",
     "Which long-necked creature towers over the savanna?",
     "Which inventor is credited with the first practical electric lamp?", "How often does a leap year occur?",
     "Which country is shaped like a boot?", "Which Greek poet composed The Odyssey?",
     "Which composer kept writing symphonies after going deaf?",
     "Which vegetable brings tears to the eyes when chopped?", "A tricycle rolls on how many wheels?",
     "Which bird is a symbol of peace?", "Pandas feed mainly on which plant?",
     "The Magic Flute is an opera by whom?", "Who founded Microsoft?", "Which mountain range contains Everest?"])


ABSENT_HELDOUT19 = (
    ["Which cooper built the oak barrels for the cellar?", "How many parachutists jumped from the biplane?",
     "Which surveyor lost a compass in the marsh?", "What colour is the chauffeur's limousine?",
     "How many balloons drifted over the valley?"],
    ["Who composed the Brandenburg Concertos?", "In which country is the Taj Mahal?",
     "How many degrees make a right angle?", "Who wrote War and Peace?",
     "Which planet is the largest orbiting the Sun?", "At what Fahrenheit reading does water become ice?",
     "Which pair of scientists described the double helix?", "How many squares are on a chessboard?",
     "Who painted Girl with a Pearl Earring?", "Which river winds through Vienna?",
     "Who was the Greek goddess of wisdom?", "Which prime is the smallest?",
     "What does a seismograph detect?", "Where was paper invented?", "Who wrote The Canterbury Tales?",
     "What is the great bell at Westminster nicknamed?",
     "Whose expedition circled the globe before anyone else?",
     "Which English king had six wives?", "Which animal is called the king of the jungle?",
     "How many years are in a millennium?", "Which Italian town is famous for gondolas?",
     "Who wrote The Little Prince?", "Which beetle lights up on summer evenings?",
     "What is a young kangaroo known as?", "Which vegetable is the base of sauerkraut?"])


def absent_questions(split: str) -> tuple[list[str], list[str]]:
    """(5 absent-topic questions, 25 more) for a split: held-out 3 to 19 have their own."""
    return {"heldout3": ABSENT_HELDOUT3, "heldout4": ABSENT_HELDOUT4, "heldout5": ABSENT_HELDOUT5,
            "heldout6": ABSENT_HELDOUT6, "heldout7": ABSENT_HELDOUT7,
            "heldout8": ABSENT_HELDOUT8, "heldout9": ABSENT_HELDOUT9,
            "heldout10": ABSENT_HELDOUT10, "heldout11": ABSENT_HELDOUT11,
            "heldout12": ABSENT_HELDOUT12, "heldout13": ABSENT_HELDOUT13,
            "heldout14": ABSENT_HELDOUT14, "heldout15": ABSENT_HELDOUT15,
            "heldout16": ABSENT_HELDOUT16, "heldout17": ABSENT_HELDOUT17,
            "heldout18": ABSENT_HELDOUT18, "heldout19": ABSENT_HELDOUT19}.get(split, (ABSENT, ABSENT_MORE))


def other_attribute_questions(split: str, truth, n: int = 10) -> list[str]:
    """n questions of other splits' attribute kinds (ones this split does not have) about subjects this meeting
    names ("Who teaches the people working on Geyser?" of a meeting that never says who does): a right answer is
    a refusal, a line about the subject that says something else is a wrong one. Fixed per split and style."""
    import random

    from tests.fixtures.styles import VOCAB

    subjects = sorted({p for p in VOCAB[split]["projects"] for f in truth.facts if p in f.question})
    if not subjects:
        return []
    rnd = random.Random(f"{split}/{getattr(truth, 'style', '')}")
    other = [v[3] for sp, vv in VOCAB.items() if sp != split for k, v in vv["attrs"].items()
             if k not in VOCAB[split]["attrs"]]
    return [t.format(p=rnd.choice(subjects)) for t in rnd.sample(other, min(n, len(other)))]
